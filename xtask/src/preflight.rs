//! Preflight: what must hold before a command touches anything. Each tool the command will call
//! is on PATH at a supported version (read from its `--version`-style output); the AWS
//! credentials belong to the environment's account; the git work tree is clean, on an allowed
//! branch and not behind its remote; the kubeconfig has the environment's cluster; the argocd
//! CLI is logged in. Every failure is one line; all of them are reported together.

use crate::cmd::Cmd;
use crate::context::{self, Context};
use crate::environment::{Environment, HelmEnvironment};
use crate::image::ContainerTool;
use crate::values;

/// A tool a command calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tool {
    /// docker, else buildah, else podman.
    Container,
    Aws,
    Terraform,
    Helm,
    Kubectl,
    /// The Argo Rollouts kubectl plugin (`kubectl argo rollouts`).
    Rollouts,
    ArgoCd,
    Git,
    Curl,
}

struct Spec {
    program: &'static str,
    args: &'static [&'static str],
    minimum: [u32; 3],
    install: &'static str,
}

const fn spec(program: &'static str, args: &'static [&'static str], minimum: [u32; 3], install: &'static str) -> Spec {
    Spec { program, args, minimum, install }
}

const DOCKER: Spec = spec("docker", &["--version"], [20, 10, 0], "Docker Engine or Docker Desktop");
const BUILDAH: Spec = spec("buildah", &["--version"], [1, 28, 0], "buildah");
const PODMAN: Spec = spec("podman", &["--version"], [4, 0, 0], "podman");
/// Why each minimum: aws-cli v2 (v1 is end of life); Terraform as terraform/envs/*/versions.tf
/// requires; Helm 3.14 for `--repo` with `upgrade --install` and OCI fixes; kubectl within one
/// minor version of EKS 1.33; Argo Rollouts and Argo CD CLIs matching the controllers that
/// bootstrap installs; git for `rev-list`/`for-each-ref` formats; curl for `--header @file`.
fn specs(tool: Tool) -> &'static Spec {
    const AWS: Spec = spec("aws", &["--version"], [2, 0, 0], "the AWS CLI v2");
    const TERRAFORM: Spec = spec("terraform", &["--version"], [1, 11, 0], "Terraform");
    const HELM: Spec = spec("helm", &["version", "--short"], [3, 14, 0], "Helm");
    const KUBECTL: Spec = spec("kubectl", &["version", "--client"], [1, 32, 0], "kubectl");
    const ROLLOUTS: Spec =
        spec("kubectl", &["argo", "rollouts", "version", "--short"], [1, 6, 0], "the Argo Rollouts kubectl plugin");
    const ARGOCD: Spec = spec("argocd", &["version", "--client", "--short"], [2, 10, 0], "the Argo CD CLI");
    const GIT: Spec = spec("git", &["--version"], [2, 30, 0], "git");
    const CURL: Spec = spec("curl", &["--version"], [7, 68, 0], "curl");
    match tool {
        Tool::Container => &DOCKER,
        Tool::Aws => &AWS,
        Tool::Terraform => &TERRAFORM,
        Tool::Helm => &HELM,
        Tool::Kubectl => &KUBECTL,
        Tool::Rollouts => &ROLLOUTS,
        Tool::ArgoCd => &ARGOCD,
        Tool::Git => &GIT,
        Tool::Curl => &CURL,
    }
}

/// Checks every tool; returns the container tool when `Tool::Container` was asked for.
pub(crate) fn tools(ctx: &Context, tools: &[Tool]) -> Result<Option<ContainerTool>, String> {
    let mut failures = Vec::new();
    let mut container = None;
    for &tool in tools {
        let spec = if tool == Tool::Container {
            match choose_container(ctx) {
                Some((chosen, spec)) => {
                    container = Some(chosen);
                    spec
                }
                None => {
                    failures.push(
                        "no container tool: none of docker, buildah, podman is on PATH (install one of them)"
                            .to_owned(),
                    );
                    continue;
                }
            }
        } else {
            specs(tool)
        };
        if let Err(failure) = check_version(ctx, spec) {
            failures.push(failure);
        }
    }
    if failures.is_empty() { Ok(container) } else { Err(failures.join("\n")) }
}

/// docker when present, else buildah, else podman.
fn choose_container(ctx: &Context) -> Option<(ContainerTool, &'static Spec)> {
    [(ContainerTool::Docker, &DOCKER), (ContainerTool::Buildah, &BUILDAH), (ContainerTool::Podman, &PODMAN)]
        .into_iter()
        .find(|(tool, _)| ctx.find(tool.program()).is_some())
}

fn check_version(ctx: &Context, spec: &Spec) -> Result<(), String> {
    let cmd = Cmd::new(spec.program).args(spec.args);
    if !ctx.dry_run && ctx.find(spec.program).is_none() {
        return Err(format!("`{}` is not on PATH: install {}", spec.program, spec.install));
    }
    let said = ctx.output(&cmd, "").map_err(|e| format!("{e} (is {} installed?)", spec.install))?;
    if ctx.dry_run {
        return Ok(());
    }
    let found = parse_version(&said)
        .ok_or_else(|| format!("cannot read a version in the output of `{cmd}`: {}", first_line(&said)))?;
    if found < spec.minimum {
        return Err(format!(
            "`{}` is {}, older than the supported {} (`{cmd}`: {})",
            spec.program,
            dotted(found),
            dotted(spec.minimum),
            first_line(&said)
        ));
    }
    Ok(())
}

/// The first `major.minor[.patch]` in a tool's version output ("Docker version 28.2.2, build
/// e6534b4", "aws-cli/2.17.0 Python/3.11.8", "Client Version: v1.33.1", "argocd: v3.1.5+cfeed49").
pub(crate) fn parse_version(text: &str) -> Option<[u32; 3]> {
    text.split(|c: char| c.is_whitespace() || "/,()=\"".contains(c)).find_map(|token| {
        let token = token.strip_prefix('v').unwrap_or(token);
        let mut parts = [0u32; 3];
        let mut count = 0;
        for (index, part) in token.split('.').take(3).enumerate() {
            let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
            if digits.is_empty() {
                break;
            }
            parts[index] = digits.parse().ok()?;
            count += 1;
            if digits.len() != part.len() {
                break;
            }
        }
        (count >= 2).then_some(parts)
    })
}

fn dotted(version: [u32; 3]) -> String {
    format!("{}.{}.{}", version[0], version[1], version[2])
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

/// The AWS credentials in use are the environment's account.
pub(crate) fn account(ctx: &Context, env: &Environment) -> Result<(), String> {
    let cmd = Cmd::new("aws").args(["sts", "get-caller-identity", "--query", "Account", "--output", "text"]);
    let account = ctx.output(&cmd, &env.aws.account_id).map_err(|e| {
        format!(
            "cannot tell which AWS account the credentials are for ({e}); log in first (aws sso login, or AWS_PROFILE)"
        )
    })?;
    if account != env.aws.account_id {
        return Err(format!(
            "the AWS credentials are for account {account}, but {} is account {}: switch AWS_PROFILE or log in to the right account",
            env.name, env.aws.account_id
        ));
    }
    Ok(())
}

/// The work tree is clean, on one of the environment's branches, and not behind its remote.
/// Returns the branch.
pub(crate) fn git(ctx: &Context, env: &Environment) -> Result<String, String> {
    let (branch, mut failures) = branch_and_tree(ctx, &env.name, &env.release.allowed_branches)?;
    if failures.is_empty() && branch != "HEAD" {
        ctx.run(&Cmd::new("git").args(["fetch", "--quiet", "--tags", "origin", &branch]))?;
        let range = format!("HEAD..origin/{branch}");
        let behind = ctx.output(&Cmd::new("git").args(["rev-list", "--count", &range]), "0")?;
        if behind != "0" {
            failures.push(format!("git: {branch} is {behind} commit(s) behind origin/{branch}: pull first"));
        }
    }
    if failures.is_empty() { Ok(branch) } else { Err(failures.join("\n")) }
}

/// The branch, and what is wrong with it or the work tree: not an allowed branch (`*` allows
/// any, a detached HEAD too), changes not committed.
fn branch_and_tree(ctx: &Context, env: &str, allowed: &[String]) -> Result<(String, Vec<String>), String> {
    let branch = ctx.output(&Cmd::new("git").args(["rev-parse", "--abbrev-ref", "HEAD"]), "<branch>")?;
    let mut failures = Vec::new();
    if !ctx.dry_run && !allowed.iter().any(|b| b == "*") {
        if branch == "HEAD" {
            failures.push("git: not on a branch (detached HEAD); check out one of the allowed branches".to_owned());
        } else if !allowed.contains(&branch) {
            failures
                .push(format!("git: on branch `{branch}`, but {env} is released only from: {}", allowed.join(", ")));
        }
    }
    let status = ctx.output(&Cmd::new("git").args(["status", "--porcelain"]), "")?;
    if !status.is_empty() {
        let changed: Vec<&str> = status.lines().collect();
        let shown = changed.iter().take(5).map(|line| line.trim()).collect::<Vec<_>>().join(", ");
        let more = if changed.len() > 5 { format!(" and {} more", changed.len() - 5) } else { String::new() };
        failures.push(format!(
            "git: the work tree is not clean ({shown}{more}): commit or stash the changes, so the release is exactly a commit"
        ));
    }
    Ok((branch, failures))
}

/// Writes the environment's cluster into the kubeconfig under the cluster's name, the context
/// every kubectl and helm call of xtask names.
pub(crate) fn kubeconfig(ctx: &Context, env: &Environment) -> Result<(), String> {
    let cmd = Cmd::new("aws").args(["eks", "update-kubeconfig", "--name", &env.cluster.name]).args([
        "--region",
        &env.aws.region,
        "--alias",
        &env.cluster.name,
    ]);
    ctx.output(&cmd, "").map(drop)
}

/// The argocd CLI is logged in to the environment's Argo CD.
pub(crate) fn argocd_login(ctx: &Context, env: &Environment) -> Result<(), String> {
    let cmd = Cmd::new("argocd").args(["account", "get-user-info"]).args(env.argocd_server());
    let login = || {
        format!(
            "argocd: not logged in to {}: run `argocd login {} --sso --grpc-web` (or set ARGOCD_AUTH_TOKEN)",
            env.argocd.server, env.argocd.server
        )
    };
    let info = ctx.output(&cmd, "Logged In: true").map_err(|e| format!("{}\n  ({e})", login()))?;
    if info.lines().any(|line| line.trim() == "Logged In: true") { Ok(()) } else { Err(login()) }
}

/// The values file pulls from the repository environment.toml pushes to, and has a digest
/// line xtask can rewrite.
pub(crate) fn values_file(ctx: &Context, env: &Environment) -> Result<(), String> {
    let path = env.values_path();
    let text = context::read_file(ctx, &path)?;
    values::digest(&text).map_err(|e| format!("{path}: {e}"))?;
    let pulled = values::repository(&text).map_err(|e| format!("{path}: {e}"))?;
    if pulled != env.image.repository {
        return Err(format!(
            "{path} pulls image.repository `{pulled}`, but deploy/{}/environment.toml pushes to `{}`: they must name one repository",
            env.name, env.image.repository
        ));
    }
    Ok(())
}

/// What a GitOps release needs: the tools, the files, git, the account, the cluster and Argo CD.
pub(crate) fn release(ctx: &Context, env: &Environment, tools: &[Tool]) -> Result<Release, String> {
    let container = self::tools(ctx, tools)?;
    let mut failures = Vec::new();
    if let Err(failure) = values_file(ctx, env) {
        failures.push(failure);
    }
    let branch = match git(ctx, env) {
        Ok(branch) => Some(branch),
        Err(failure) => {
            failures.push(failure);
            None
        }
    };
    if let Err(failure) = account(ctx, env) {
        failures.push(failure);
    }
    if !failures.is_empty() {
        return Err(failures.join("\n"));
    }
    kubeconfig(ctx, env)?;
    argocd_login(ctx, env)?;
    Ok(Release { branch: branch.unwrap_or_default(), container })
}

/// What a release with Helm (`release.driver = "helm"`) needs: the tools; the values files,
/// pulling the image by the name the load gives it; a clean work tree on an allowed branch (the
/// release is exactly a commit; nothing is pushed, so the remote is not asked); a current
/// kubeconfig context that is not the cluster of an Argo CD environment (those are released
/// through Argo CD only). Returns the container tool when one was asked for.
pub(crate) fn helm_release(
    ctx: &Context,
    env: &HelmEnvironment,
    tools: &[Tool],
) -> Result<Option<ContainerTool>, String> {
    let container = self::tools(ctx, tools)?;
    let mut failures = Vec::new();
    for (index, path) in env.release.values.iter().enumerate() {
        let text = match context::read_file(ctx, path) {
            Ok(text) => text,
            Err(e) => {
                failures.push(e);
                continue;
            }
        };
        // The first file names the image.
        if index > 0 {
            continue;
        }
        match values::repository(&text) {
            Ok(pulled) if pulled == env.image.repository => {}
            Ok(pulled) => failures.push(format!(
                "{path} pulls image.repository `{pulled}`, but deploy/{}/environment.toml loads the image as `{}`",
                env.name, env.image.repository
            )),
            Err(e) => failures.push(format!("{path}: {e}")),
        }
    }
    failures.extend(branch_and_tree(ctx, &env.name, &env.release.allowed_branches)?.1);
    let current = ctx.output(&Cmd::new("kubectl").args(["config", "current-context"]), "<context>")?;
    if current.is_empty() {
        failures.push("kubectl: no current context: point KUBECONFIG at the cluster to deploy to".to_owned());
    }
    for other in argocd_clusters(ctx) {
        if current == other {
            failures.push(format!(
                "kubectl: the current context `{current}` is the cluster of an Argo CD environment; {} deploys only elsewhere",
                env.name
            ));
        }
    }
    if !failures.is_empty() {
        return Err(failures.join("\n"));
    }
    ctx.say(&format!("deploying {} to the cluster of context `{current}`", env.name));
    Ok(container)
}

/// The cluster names of the Argo CD environments under deploy/.
fn argocd_clusters(ctx: &Context) -> Vec<String> {
    let Ok(dirs) = std::fs::read_dir(ctx.root.join("deploy")) else { return Vec::new() };
    let mut names: Vec<String> = dirs.flatten().map(|d| d.file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
        .iter()
        .filter(|name| ctx.root.join(format!("deploy/{name}/environment.toml")).is_file())
        .filter_map(|name| Environment::load(ctx, name).ok())
        .map(|env| env.cluster.name)
        .collect()
}

/// What preflight found out.
pub(crate) struct Release {
    /// The branch to push to.
    pub(crate) branch: String,
    pub(crate) container: Option<ContainerTool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_versions_the_tools_print() {
        let cases: [(&str, [u32; 3]); 12] = [
            ("Docker version 28.2.2, build e6534b4", [28, 2, 2]),
            ("buildah version 1.28.2 (image-spec 1.0.2-dev, runtime-spec 1.0.2-dev)", [1, 28, 2]),
            ("podman version 4.3.1", [4, 3, 1]),
            ("aws-cli/2.17.0 Python/3.11.8 Linux/6.1.0 exe/x86_64.debian.12", [2, 17, 0]),
            ("aws-cli/1.45.11 Python/3.11.7 Linux/6.18.44 botocore/1.43.11", [1, 45, 11]),
            ("Terraform v1.11.4\non linux_amd64", [1, 11, 4]),
            ("v4.1.4+g05fa379", [4, 1, 4]),
            ("Client Version: v1.32.4-dispatcher\nKustomize Version: v5.5.0", [1, 32, 4]),
            ("kubectl-argo-rollouts: v1.8.3+49fa151", [1, 8, 3]),
            ("argocd: v3.1.5+cfeed49", [3, 1, 5]),
            ("git version 2.47.3", [2, 47, 3]),
            ("curl 7.88.1 (x86_64-pc-linux-gnu) libcurl/7.88.1 OpenSSL/3.0.19", [7, 88, 1]),
        ];
        for (text, version) in cases {
            assert_eq!(parse_version(text), Some(version), "{text}");
        }
        assert_eq!(parse_version("version.BuildInfo{Version:\"v3.16.2\", GitCommit:\"x\"}"), Some([3, 16, 2]));
        assert_eq!(parse_version("no version here 7"), None);
    }
}
