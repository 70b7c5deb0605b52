//! `cargo xtask image build|push|smoke`: the container image of the service, built from the
//! Dockerfile at the repository root with docker (preferred), buildah or podman, tagged with the
//! short git sha and labelled with the OCI revision, source and creation time. `push` logs in
//! to the environment's ECR registry, pushes, and resolves the digest releases deploy by.
//! `smoke` builds a runnable image of the Dockerfile's runtime stage with buildah, without an
//! engine or a registry, and checks that it serves (image_smoke.rs).

use std::net::TcpListener;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::cmd::Cmd;
use crate::context::Context;
use crate::environment::Environment;
use crate::flags::Args;
use crate::image_smoke;
use crate::preflight::{self, Tool};
use crate::report::{StepError, Steps};
use crate::values::Digest;

/// Where the image's source lives (org.opencontainers.image.source).
pub(crate) const SOURCE_URL: &str = "https://github.com/pixelmill/pixelmill";
/// Local name of the image before it is tagged for a registry.
const LOCAL_NAME: &str = "pixelmill";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ContainerTool {
    Docker,
    Buildah,
    Podman,
}

impl ContainerTool {
    pub(crate) fn program(self) -> &'static str {
        match self {
            ContainerTool::Docker => "docker",
            ContainerTool::Buildah => "buildah",
            ContainerTool::Podman => "podman",
        }
    }
}

pub(crate) enum Image {
    Build,
    Push { env: String },
    Smoke,
}

impl Image {
    pub(crate) fn parse(mut args: Args) -> Result<Image, String> {
        let image = match args.subcommand("image", &["build", "push", "smoke"])?.as_str() {
            "build" => Image::Build,
            "smoke" => Image::Smoke,
            _ => Image::Push { env: args.positional("<env>")? },
        };
        args.finish()?;
        Ok(image)
    }

    pub(crate) fn run(self, ctx: &Context) -> Result<(), String> {
        let mut steps = Steps::new(&ctx.output);
        let result = self.run_steps(ctx, &mut steps);
        steps.finish(result)
    }

    fn run_steps(self, ctx: &Context, steps: &mut Steps<'_>) -> Result<(), StepError> {
        match self {
            Image::Build => {
                let tool = steps.run("preflight", || container_tool(ctx, &[Tool::Container, Tool::Git]))?;
                let built = steps.run("build", || build(ctx, tool))?;
                ctx.say(&format!("built {}", built.local));
            }
            Image::Push { env } => {
                let (env, tool) = steps.run("preflight", || {
                    let env = Environment::load(ctx, &env)?;
                    let tool = container_tool(ctx, &[Tool::Container, Tool::Aws, Tool::Git])?;
                    preflight::account(ctx, &env)?;
                    Ok((env, tool))
                })?;
                let digest = steps.run("push", || push(ctx, tool, &env, &Built::from_head(ctx)?))?;
                ctx.say(&format!("pushed {}@{digest}", env.image.repository));
            }
            Image::Smoke => {
                let port = free_port().map_err(|message| StepError { step: "preflight", message })?;
                image_smoke::run(ctx, steps, port)?;
            }
        }
        Ok(())
    }
}

/// A TCP port nothing listens on now, for a server started next.
fn free_port() -> Result<u16, String> {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|e| format!("no free port on 127.0.0.1: {e}"))
}

fn container_tool(ctx: &Context, tools: &[Tool]) -> Result<ContainerTool, String> {
    preflight::tools(ctx, tools)?.ok_or_else(|| "no container tool".to_owned())
}

/// An image built from HEAD.
pub(crate) struct Built {
    /// The short git sha: the tag in every repository.
    pub(crate) tag: String,
    /// `pixelmill:<tag>`.
    pub(crate) local: String,
}

impl Built {
    fn from_head(ctx: &Context) -> Result<Built, String> {
        let tag = ctx.output(&Cmd::new("git").args(["rev-parse", "--short", "HEAD"]), "<short-sha>")?;
        Ok(Built { local: format!("{LOCAL_NAME}:{tag}"), tag })
    }
}

/// Builds the Dockerfile at the root, tagged `pixelmill:<short sha>`, with OCI labels.
pub(crate) fn build(ctx: &Context, tool: ContainerTool) -> Result<Built, String> {
    let built = Built::from_head(ctx)?;
    let revision = ctx.output(&Cmd::new("git").args(["rev-parse", "HEAD"]), "<commit>")?;
    let mut cmd = match tool {
        ContainerTool::Docker => Cmd::new("docker").arg("build"),
        // buildah's `bud` reuses cached layers only when asked to.
        ContainerTool::Buildah => Cmd::new("buildah").args(["bud", "--layers"]),
        ContainerTool::Podman => Cmd::new("podman").args(["build", "--layers"]),
    };
    cmd = cmd.args(["--file", "Dockerfile", "--tag", &built.local]).args([
        "--label".to_owned(),
        format!("org.opencontainers.image.revision={revision}"),
        "--label".to_owned(),
        format!("org.opencontainers.image.source={SOURCE_URL}"),
        "--label".to_owned(),
        format!("org.opencontainers.image.created={}", rfc3339_now()),
        ".".to_owned(),
    ]);
    ctx.run(&cmd)?;
    Ok(built)
}

/// Tags the built image for the environment's repository, logs in to the registry, pushes, and
/// returns the digest the registry gives the image.
pub(crate) fn push(ctx: &Context, tool: ContainerTool, env: &Environment, built: &Built) -> Result<Digest, String> {
    let program = tool.program();
    let remote = format!("{}:{}", env.image.repository, built.tag);
    ctx.run(&Cmd::new(program).args(["tag", &built.local, &remote]))?;
    let password = Cmd::new("aws").args(["ecr", "get-login-password", "--region", &env.aws.region]);
    let login = Cmd::new(program).args(["login", "--username", "AWS", "--password-stdin", env.registry()]);
    ctx.pipe(&password, &login)?;
    ctx.run(&Cmd::new(program).args(["push", &remote]))?;
    let image_id = format!("imageTag={}", built.tag);
    let describe = Cmd::new("aws")
        .args(["ecr", "describe-images", "--region", &env.aws.region, "--repository-name", env.repository_name()])
        .args(["--image-ids", &image_id, "--query", "imageDetails[0].imageDigest", "--output", "text"]);
    let digest = ctx.output(&describe, Digest::placeholder().as_str())?;
    if ctx.dry_run {
        return Ok(Digest::placeholder());
    }
    Digest::parse(&digest).map_err(|e| format!("ECR answered no digest for {remote}: {e}"))
}

/// Now, in UTC, as RFC 3339 (`2025-01-31T12:00:00Z`).
pub(crate) fn rfc3339_now() -> String {
    let seconds = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    rfc3339(seconds)
}

pub(crate) fn rfc3339(unix_seconds: u64) -> String {
    let days = unix_seconds / 86_400;
    let rest = unix_seconds % 86_400;
    let (year, month, day) = civil_from_days(days as i64);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rest / 3600, rest % 3600 / 60, rest % 60)
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Saves the built image as an OCI archive in the scratch directory; returns its path.
pub(crate) fn save(ctx: &Context, tool: ContainerTool, built: &Built) -> Result<String, String> {
    let path = ctx.scratch()?.join("image.tar").display().to_string();
    let cmd = match tool {
        // docker 25 and later write an OCI layout (index.json) with `save`.
        ContainerTool::Docker => Cmd::new("docker").args(["save", "--output", &path, &built.local]),
        ContainerTool::Buildah => Cmd::new("buildah").args(["push", &built.local, &format!("oci-archive:{path}")]),
        ContainerTool::Podman => {
            Cmd::new("podman").args(["save", "--format", "oci-archive", "--output", &path, &built.local])
        }
    };
    ctx.run(&cmd)?;
    Ok(path)
}

/// Names the image of the OCI archive at `archive` `<repository>:<tag>` and
/// `<repository>@<digest>`, its manifest's digest, and writes it as a new archive; returns that
/// archive and the digest. The digest name is what lets a node without a registry run the
/// image by digest: the container runtime resolves `repository@digest` only when an image
/// carries that name, which an import gives it only from the archive.
pub(crate) fn name_by_digest(
    ctx: &Context,
    archive: &str,
    repository: &str,
    tag: &str,
) -> Result<(String, Digest), String> {
    let scratch = ctx.scratch()?.to_path_buf();
    let layout = scratch.join("image-layout");
    let named = scratch.join("image-named.tar").display().to_string();
    let layout_path = layout.display().to_string();
    if !ctx.dry_run {
        let _ = std::fs::remove_dir_all(&layout);
        std::fs::create_dir_all(&layout).map_err(|e| format!("cannot create {layout_path}: {e}"))?;
    }
    ctx.run(&Cmd::new("tar").args(["-xf", archive, "-C", &layout_path]))?;
    let index_path = layout.join("index.json");
    let digest = if ctx.dry_run {
        ctx.say(&format!("write {layout_path}/index.json: the manifest named {repository}:{tag} and by its digest"));
        Digest::placeholder()
    } else {
        let text = std::fs::read_to_string(&index_path)
            .map_err(|e| format!("{archive} is not an OCI archive (no index.json: {e})"))?;
        let (index, digest) = named_index(&text, repository, tag).map_err(|e| format!("{archive}: {e}"))?;
        std::fs::write(&index_path, index).map_err(|e| format!("cannot write {}: {e}", index_path.display()))?;
        digest
    };
    let mut entries = vec!["oci-layout".to_owned(), "index.json".to_owned(), "blobs".to_owned()];
    if !ctx.dry_run {
        let listed = std::fs::read_dir(&layout).map_err(|e| format!("cannot list {layout_path}: {e}"))?;
        for entry in listed.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !entries.contains(&name) {
                entries.push(name);
            }
        }
    }
    ctx.run(&Cmd::new("tar").args(["-cf", &named, "-C", &layout_path]).args(entries))?;
    Ok((named, digest))
}

/// The OCI index `text` with its one image manifest named twice (tag and digest), and that
/// manifest's digest.
pub(crate) fn named_index(text: &str, repository: &str, tag: &str) -> Result<(String, Digest), String> {
    let index: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("index.json: {e}"))?;
    let manifests = index["manifests"].as_array().ok_or("index.json has no manifests")?;
    let [manifest] = manifests.as_slice() else {
        return Err(format!("index.json lists {} images; one is expected", manifests.len()));
    };
    let digest = Digest::parse(manifest["digest"].as_str().unwrap_or_default())?;
    let named = |name: String| {
        let mut entry = manifest.clone();
        entry["annotations"] = serde_json::json!({ "io.containerd.image.name": name });
        entry
    };
    let mut index = index.clone();
    index["manifests"] =
        serde_json::Value::Array(vec![named(format!("{repository}:{tag}")), named(format!("{repository}@{digest}"))]);
    Ok((index.to_string(), digest))
}

/// Imports the archive into the cluster's nodes with the environment's load command
/// (`PIXELMILL_IMAGE_LOAD` overrides it), the archive's path its last argument.
pub(crate) fn load(ctx: &Context, command: &str, archive: &str) -> Result<(), String> {
    let command =
        ctx.var("PIXELMILL_IMAGE_LOAD").filter(|c| !c.trim().is_empty()).unwrap_or_else(|| command.to_owned());
    let mut words = command.split_whitespace();
    let program = words.next().ok_or("the image load command is empty")?;
    ctx.run(&Cmd::new(program).args(words).arg(archive))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_times_as_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_735_689_599), "2024-12-31T23:59:59Z");
        assert_eq!(rfc3339(4_107_542_400), "2100-03-01T00:00:00Z");
    }
}
