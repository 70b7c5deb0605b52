//! The image lines of `deploy/<env>/values.yaml`: xtask reads the repository and the digest, and
//! rewrites exactly one line, `  digest: "sha256:<64 hex>"` under `image:`, leaving every other
//! byte of the file as it was (comments, order, line endings).

use std::fmt;

/// An image digest, `sha256:` and 64 lowercase hex digits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Digest(String);

impl Digest {
    pub(crate) fn parse(text: &str) -> Result<Digest, String> {
        let hex = text.strip_prefix("sha256:").unwrap_or("");
        if hex.len() == 64 && hex.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)) {
            Ok(Digest(text.to_owned()))
        } else {
            Err(format!("`{text}` is not an image digest (sha256:<64 hex>)"))
        }
    }

    /// What a dry run shows where the digest of the pushed image will be.
    pub(crate) fn placeholder() -> Digest {
        Digest("sha256:<digest>".to_owned())
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

const DIGEST_LINE: &str = "  digest: ";

/// The digest the values file deploys.
pub(crate) fn digest(values: &str) -> Result<Digest, String> {
    let (_, line) = digest_line(values)?;
    let quoted = line.trim_end().strip_prefix(DIGEST_LINE).unwrap_or("");
    let unquoted = quoted.strip_prefix('"').and_then(|rest| rest.strip_suffix('"')).unwrap_or("");
    Digest::parse(unquoted)
        .map_err(|_| format!("the image digest line is `{}`, not `{DIGEST_LINE}\"sha256:<64 hex>\"`", line.trim_end()))
}

/// The image repository the values file pulls from.
pub(crate) fn repository(values: &str) -> Result<String, String> {
    image_block(values)
        .find_map(|(_, line)| line.trim_end().strip_prefix("  repository: ").map(|r| r.trim_matches('"').to_owned()))
        .ok_or_else(|| "no `  repository:` line under `image:`".to_owned())
}

/// The values file with its digest line set to `digest`; nothing else changes.
pub(crate) fn with_digest(values: &str, digest: &Digest) -> Result<String, String> {
    self::digest(values)?;
    let (offset, line) = digest_line(values)?;
    let content_len = line.trim_end_matches(['\n', '\r']).len();
    let mut rewritten = String::with_capacity(values.len());
    rewritten.push_str(&values[..offset]);
    rewritten.push_str(&format!("{DIGEST_LINE}\"{digest}\""));
    rewritten.push_str(&values[offset + content_len..]);
    Ok(rewritten)
}

/// The one `  digest:` line under `image:`, with its byte offset.
fn digest_line(values: &str) -> Result<(usize, &str), String> {
    let lines: Vec<(usize, &str)> = image_block(values).filter(|(_, line)| line.starts_with(DIGEST_LINE)).collect();
    match lines.as_slice() {
        [one] => Ok(*one),
        [] => Err("no `  digest:` line under `image:`".to_owned()),
        _ => Err("more than one `  digest:` line under `image:`".to_owned()),
    }
}

/// The lines (with their offsets and line endings) of the top-level `image:` mapping.
fn image_block(values: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut offset = 0;
    let mut inside = false;
    values.split_inclusive('\n').filter_map(move |line| {
        let start = offset;
        offset += line.len();
        let content = line.trim_end();
        let top_level = !content.is_empty() && !content.starts_with(' ') && !content.starts_with('#');
        if top_level {
            inside = content == "image:";
            return None;
        }
        inside.then_some((start, line))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    const NEW: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn values(digest: &str, newline: &str) -> String {
        [
            "# comment: digest: \"sha256:nothing\"",
            "other:",
            "  digest: \"not-this-one\"",
            "image:",
            "  repository: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/pixelmill",
            "  # the digest below",
            &format!("  digest: \"{digest}\""),
            "",
            "rollouts:",
            "  enabled: true",
            "",
        ]
        .join(newline)
    }

    #[test]
    fn rewrites_only_the_digest_line() {
        let before = values(OLD, "\n");
        let after = with_digest(&before, &Digest::parse(NEW).unwrap()).unwrap();
        assert_eq!(after, values(NEW, "\n"));
        assert_eq!(digest(&after).unwrap().as_str(), NEW);
        assert_eq!(repository(&after).unwrap(), "123456789012.dkr.ecr.eu-west-1.amazonaws.com/pixelmill");
    }

    #[test]
    fn keeps_crlf_line_endings() {
        let before = values(OLD, "\r\n");
        let after = with_digest(&before, &Digest::parse(NEW).unwrap()).unwrap();
        assert_eq!(after, values(NEW, "\r\n"));
    }

    #[test]
    fn refuses_a_file_without_exactly_one_digest_line() {
        let none = "image:\n  repository: r\nother:\n  digest: \"x\"\n";
        assert!(digest(none).unwrap_err().contains("no `  digest:` line"));
        let two = format!("image:\n  digest: \"{OLD}\"\n  digest: \"{OLD}\"\n");
        assert!(with_digest(&two, &Digest::parse(NEW).unwrap()).unwrap_err().contains("more than one"));
        let unquoted = format!("image:\n  digest: {OLD}\n");
        assert!(digest(&unquoted).unwrap_err().contains("not `  digest: \"sha256:<64 hex>\"`"));
        let tag = "image:\n  digest: \"\"\n";
        assert!(with_digest(tag, &Digest::parse(NEW).unwrap()).is_err());
    }

    #[test]
    fn digests_are_sha256_with_64_lowercase_hex_digits() {
        assert!(Digest::parse(NEW).is_ok());
        assert!(Digest::parse(&NEW.to_uppercase()).is_err());
        assert!(Digest::parse(&NEW[..70]).is_err());
        assert!(Digest::parse("sha512:abc").is_err());
        assert!(Digest::parse(&NEW.replace("sha256", "md5")).is_err());
    }
}
