use clap::Parser;
use clap::error::ErrorKind;
use latchkey::{cli, config::Cli};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            return std::process::ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{}", cli::one_line_usage_error(&e));
            return std::process::ExitCode::from(2);
        }
    };
    let serving = matches!(
        cli.command,
        latchkey::config::Command::Serve(_) | latchkey::config::Command::Bench(_)
    );
    latchkey::telemetry::init(if serving { "info" } else { "warn" });
    match cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
            std::process::ExitCode::FAILURE
        }
    }
}
