//! Command-line arguments of the subcommands: flags (`--dry-run`), positionals (`<env>`) and
//! a nested subcommand (`infra plan`), with an error for anything left over.

pub(crate) struct Args {
    command: &'static str,
    rest: Vec<String>,
}

impl Args {
    pub(crate) fn new(command: &'static str, args: &[String]) -> Args {
        Args { command, rest: args.to_vec() }
    }

    /// Whether `--name` was given (anywhere); removes it.
    pub(crate) fn flag(&mut self, name: &str) -> bool {
        let before = self.rest.len();
        self.rest.retain(|arg| arg != name);
        self.rest.len() != before
    }

    /// The value of `--name VALUE` or `--name=VALUE` (anywhere), if given; removes both.
    pub(crate) fn option(&mut self, name: &str) -> Result<Option<String>, String> {
        let prefix = format!("{name}=");
        if let Some(index) = self.rest.iter().position(|arg| arg.starts_with(&prefix)) {
            return Ok(Some(self.rest.remove(index)[prefix.len()..].to_owned()));
        }
        let Some(index) = self.rest.iter().position(|arg| arg == name) else { return Ok(None) };
        match self.rest.get(index + 1).filter(|value| !value.starts_with("--")) {
            Some(_) => {
                let value = self.rest.remove(index + 1);
                self.rest.remove(index);
                Ok(Some(value))
            }
            None => Err(format!("`{}`: {name} needs a value", self.command)),
        }
    }

    /// The next argument that is not a flag.
    pub(crate) fn positional(&mut self, what: &str) -> Result<String, String> {
        match self.rest.iter().position(|arg| !arg.starts_with("--")) {
            Some(index) => Ok(self.rest.remove(index)),
            None => Err(format!("`{}` needs {what}", self.command)),
        }
    }

    /// The next positional, which must be one of `choices`.
    pub(crate) fn subcommand(&mut self, what: &str, choices: &[&str]) -> Result<String, String> {
        let choice = self.positional(&format!("one of: {}", choices.join(", ")))?;
        if choices.contains(&choice.as_str()) {
            Ok(choice)
        } else {
            Err(format!("unknown `{what}` subcommand `{choice}`: expected one of {}", choices.join(", ")))
        }
    }

    /// Everything not taken yet, as given.
    pub(crate) fn rest(self) -> Vec<String> {
        self.rest
    }

    /// Fails on anything not taken.
    pub(crate) fn finish(self) -> Result<(), String> {
        match self.rest.first() {
            None => Ok(()),
            Some(extra) => Err(format!("`{}`: unexpected argument `{extra}`", self.command)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Args {
        Args::new("deploy", &words.iter().map(|word| (*word).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn takes_flags_anywhere_then_positionals_in_order() {
        let mut parsed = args(&["--dry-run", "staging", "--infra"]);
        assert!(parsed.flag("--infra"));
        assert!(parsed.flag("--dry-run"));
        assert!(!parsed.flag("--yes"));
        assert_eq!(parsed.positional("<env>").unwrap(), "staging");
        parsed.finish().unwrap();
    }

    #[test]
    fn names_what_is_missing_or_left_over() {
        assert_eq!(args(&[]).positional("<env>").unwrap_err(), "`deploy` needs <env>");
        let mut extra = args(&["staging", "--force"]);
        extra.positional("<env>").unwrap();
        assert_eq!(extra.finish().unwrap_err(), "`deploy`: unexpected argument `--force`");
        let mut given = args(&["local", "--image-archive", "/tmp/a.tar"]);
        assert_eq!(given.option("--image-archive").unwrap().as_deref(), Some("/tmp/a.tar"));
        assert_eq!(given.positional("<env>").unwrap(), "local");
        assert_eq!(args(&["--image-archive=b.tar"]).option("--image-archive").unwrap().as_deref(), Some("b.tar"));
        assert_eq!(args(&["local"]).option("--image-archive").unwrap(), None);
        assert_eq!(
            args(&["--image-archive"]).option("--image-archive").unwrap_err(),
            "`deploy`: --image-archive needs a value"
        );
        let error = args(&["frobnicate"]).subcommand("infra", &["plan", "apply"]).unwrap_err();
        assert_eq!(error, "unknown `infra` subcommand `frobnicate`: expected one of plan, apply");
    }
}
