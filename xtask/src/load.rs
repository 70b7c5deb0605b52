//! `cargo xtask load ARGS...`: the bundled load generator, `pixelmill-load`, built in release
//! mode and run here with the arguments as given (for example against a local
//! `pixelmill serve` or an environment's public URL).

use crate::cmd::Cmd;
use crate::context::Context;
use crate::flags::Args;
use crate::report::Steps;

pub(crate) struct Load {
    args: Vec<String>,
}

impl Load {
    pub(crate) fn parse(args: Args) -> Result<Load, String> {
        Ok(Load { args: args.rest() })
    }

    pub(crate) fn run(self, ctx: &Context) -> Result<(), String> {
        let cargo = ctx.var("CARGO").unwrap_or_else(|| "cargo".to_owned());
        let cmd = Cmd::new(&cargo).args(["run", "--release", "--quiet", "--package", "pixelmill-load", "--"]);
        let mut steps = Steps::new(&ctx.output);
        let result = steps.run("load", || ctx.run(&cmd.args(&self.args)));
        steps.finish(result.map(drop))
    }
}
