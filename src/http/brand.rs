//! `--brand-name`, `--brand-logo-url`, `--brand-color`: what the pages show of the operator.
//! The brand colour is used as given for buttons; text colours derived from it are chosen so
//! that every pairing keeps WCAG 2.2 AA contrast (§1.4.3: 4.5:1 for text) in light and dark
//! mode, whatever colour the operator picks.

use serde::Serialize;

/// The pages' background behind text in light and dark mode (the card, `assets/latchkey.css`).
const LIGHT_CARD: Rgb = Rgb(0xff, 0xff, 0xff);
const DARK_CARD: Rgb = Rgb(0x16, 0x1b, 0x22);
/// Latchkey's own accent, when no brand colour is given.
const DEFAULT_LIGHT: Rgb = Rgb(0x1f, 0x5f, 0xbf);
const DEFAULT_DARK: Rgb = Rgb(0x6e, 0xa8, 0xfe);
/// WCAG 2.2 §1.4.3 minimum for normal text.
const AA_TEXT: f64 = 4.5;

/// What every template sees as `brand`.
#[derive(Clone, Debug, Serialize)]
pub struct Branding {
    /// Shown at the top of every page and in titles.
    pub name: String,
    /// An image shown next to the name; its origin is added to the pages' CSP `img-src`.
    pub logo_url: Option<String>,
    #[serde(skip)]
    color: Option<Rgb>,
}

impl Default for Branding {
    fn default() -> Self {
        Branding {
            name: "Latchkey".to_owned(),
            logo_url: None,
            color: None,
        }
    }
}

impl Branding {
    /// Checks the flags; each error names the flag and what it accepts.
    pub fn new(
        name: Option<&str>,
        logo_url: Option<&str>,
        color: Option<&str>,
    ) -> Result<Self, String> {
        let name = match name.map(str::trim) {
            None => "Latchkey".to_owned(),
            Some("") => return Err("--brand-name must not be empty".to_owned()),
            Some(n) if n.chars().count() > 60 || n.chars().any(char::is_control) => {
                return Err(
                    "--brand-name must be at most 60 characters, without control characters"
                        .to_owned(),
                );
            }
            Some(n) => n.to_owned(),
        };
        let logo_url = logo_url.map(check_logo_url).transpose()?;
        let color = color
            .map(|c| {
                Rgb::parse(c).ok_or_else(|| {
                    format!("--brand-color must be a hex colour such as #1f5fbf or #15b, not {c:?}")
                })
            })
            .transpose()?;
        Ok(Branding {
            name,
            logo_url,
            color,
        })
    }

    /// The origin the logo loads from, for the CSP; `None` for no logo or a path on this server.
    pub fn logo_origin(&self) -> Option<String> {
        let url = url::Url::parse(self.logo_url.as_deref()?).ok()?;
        Some(url.origin().ascii_serialization())
    }

    /// The CSS custom properties of the colours, appended to the stylesheet.
    pub fn css(&self) -> String {
        let (light, dark) = match self.color {
            Some(c) => (c, c),
            None => (DEFAULT_LIGHT, DEFAULT_DARK),
        };
        format!(
            ":root {{ --accent: {}; --on-accent: {}; --accent-text: {}; }}\n\
             @media (prefers-color-scheme: dark) {{ :root {{ --accent: {}; --on-accent: {}; --accent-text: {}; }} }}\n",
            light.hex(),
            light.best_text().hex(),
            light.readable_on(LIGHT_CARD).hex(),
            dark.hex(),
            dark.best_text().hex(),
            dark.readable_on(DARK_CARD).hex(),
        )
    }
}

/// An https URL (http only for loopback hosts, for development) or a path on this server.
fn check_logo_url(raw: &str) -> Result<String, String> {
    if raw.starts_with('/') && !raw.starts_with("//") {
        return Ok(raw.to_owned());
    }
    let message = || {
        format!(
            "--brand-logo-url must be an https URL or a path starting with /, not {raw:?} (http is allowed for localhost)"
        )
    };
    let url = url::Url::parse(raw).map_err(|_| message())?;
    match url.scheme() {
        "https" => Ok(raw.to_owned()),
        "http" if crate::protocol::redirect_uri::is_loopback_host(&url) => Ok(raw.to_owned()),
        _ => Err(message()),
    }
}

/// An sRGB colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rgb(u8, u8, u8);

impl Rgb {
    /// `#rrggbb` or `#rgb`.
    fn parse(raw: &str) -> Option<Rgb> {
        let hex = raw.trim().strip_prefix('#')?;
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let channel = |s: &str| u8::from_str_radix(s, 16).ok();
        match hex.len() {
            6 => Some(Rgb(
                channel(&hex[0..2])?,
                channel(&hex[2..4])?,
                channel(&hex[4..6])?,
            )),
            3 => {
                let short = |i: usize| channel(&hex[i..=i]).map(|v| v * 17);
                Some(Rgb(short(0)?, short(1)?, short(2)?))
            }
            _ => None,
        }
    }

    fn hex(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }

    /// WCAG 2.2 relative luminance.
    fn luminance(self) -> f64 {
        let linear = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.04045 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * linear(self.0) + 0.7152 * linear(self.1) + 0.0722 * linear(self.2)
    }

    /// WCAG 2.2 contrast ratio, from 1 to 21.
    pub fn contrast(self, other: Rgb) -> f64 {
        let (a, b) = (self.luminance(), other.luminance());
        (a.max(b) + 0.05) / (a.min(b) + 0.05)
    }

    /// White or black, whichever reads better on this colour: at least 4.5:1 always, since
    /// every colour has at least 4.58:1 with one of the two.
    fn best_text(self) -> Rgb {
        let white = Rgb(0xff, 0xff, 0xff);
        let black = Rgb(0, 0, 0);
        if self.contrast(white) >= self.contrast(black) {
            white
        } else {
            black
        }
    }

    /// This colour, darkened or lightened towards the far end from `background` until text in
    /// it reaches 4.5:1 there.
    fn readable_on(self, background: Rgb) -> Rgb {
        let target = if background.luminance() > 0.5 {
            Rgb(0, 0, 0)
        } else {
            Rgb(0xff, 0xff, 0xff)
        };
        (0..=20)
            .map(|step| self.mix(target, f64::from(step) / 20.0))
            .find(|c| c.contrast(background) >= AA_TEXT)
            .unwrap_or(target)
    }

    fn mix(self, other: Rgb, t: f64) -> Rgb {
        let channel =
            |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * t).round() as u8;
        Rgb(
            channel(self.0, other.0),
            channel(self.1, other.1),
            channel(self.2, other.2),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_parse_long_and_short_forms_only() {
        assert_eq!(Rgb::parse("#1f5fbf"), Some(Rgb(0x1f, 0x5f, 0xbf)));
        assert_eq!(Rgb::parse("#fff"), Some(Rgb(255, 255, 255)));
        for bad in [
            "1f5fbf",
            "#1f5fb",
            "#ggg",
            "red",
            "#1f5fbf00",
            "#+1f5fb",
            "",
        ] {
            assert_eq!(Rgb::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn contrast_matches_wcag_reference_values() {
        let white = Rgb(255, 255, 255);
        assert!((Rgb(0, 0, 0).contrast(white) - 21.0).abs() < 0.01);
        // #767676 on white is the well-known 4.54:1.
        assert!((Rgb(0x76, 0x76, 0x76).contrast(white) - 4.54).abs() < 0.01);
    }

    #[test]
    fn every_derived_pairing_keeps_aa_contrast() {
        // A spread of colours, the awkward mid-greys and saturated yellows included.
        for r in (0..=255).step_by(51) {
            for g in (0..=255).step_by(51) {
                for b in (0..=255).step_by(51) {
                    let c = Rgb(r, g, b);
                    assert!(c.best_text().contrast(c) >= AA_TEXT, "{c:?} button text");
                    assert!(
                        c.readable_on(LIGHT_CARD).contrast(LIGHT_CARD) >= AA_TEXT,
                        "{c:?} light"
                    );
                    assert!(
                        c.readable_on(DARK_CARD).contrast(DARK_CARD) >= AA_TEXT,
                        "{c:?} dark"
                    );
                }
            }
        }
    }

    #[test]
    fn flags_are_checked_with_messages_naming_them() {
        assert!(Branding::new(None, None, None).is_ok());
        let e = Branding::new(Some(""), None, None).unwrap_err();
        assert!(e.contains("--brand-name"));
        let e = Branding::new(None, Some("http://cdn.example/logo.svg"), None).unwrap_err();
        assert!(e.contains("--brand-logo-url"));
        assert!(Branding::new(None, Some("javascript:alert(1)"), None).is_err());
        assert!(Branding::new(None, Some("//cdn.example/logo.svg"), None).is_err());
        let e = Branding::new(None, None, Some("blue")).unwrap_err();
        assert!(e.contains("--brand-color"));
        let b = Branding::new(
            Some("Acme"),
            Some("https://cdn.example/a.svg"),
            Some("#ffcc00"),
        )
        .unwrap();
        assert_eq!(b.logo_origin().as_deref(), Some("https://cdn.example"));
        assert!(b.css().contains("--accent: #ffcc00; --on-accent: #000000"));
        assert_eq!(
            Branding::new(None, Some("/static/logo.png"), None)
                .unwrap()
                .logo_origin(),
            None
        );
    }
}
