//! The Argo Rollout of an environment, as the release waits on it.
//!
//! `kubectl argo rollouts status` never returns for a paused Rollout, so xtask polls
//! `kubectl get rollout -o json` instead and reads the phase itself. A Rollout that pauses for a
//! promotion (blue-green before the switch, or a canary step `pause: {}`) is promoted when the
//! environment says `auto_promote` and its pre-promotion analysis passed; otherwise xtask tells
//! the person how to promote it and waits, up to the environment's timeout, then fails on
//! purpose. A timed canary pause (`pause: {duration: 2m}`) is never promoted: it ends by itself.

use std::time::Instant;

use serde_json::Value;

use crate::cmd::Cmd;
use crate::context::Context;
use crate::environment::Environment;
use crate::values::Digest;

/// What the release needs to know of a Rollout.
#[derive(Debug, PartialEq)]
pub(crate) struct State {
    /// Healthy, Progressing, Paused or Degraded.
    pub(crate) phase: String,
    pub(crate) message: String,
    /// The controller has seen the latest spec.
    pub(crate) observed: bool,
    /// The image of the spec's first container.
    pub(crate) image: String,
    /// Paused until someone (or xtask) promotes it.
    pub(crate) waits_for_promotion: bool,
    /// Blue-green: the pre-promotion analysis run's status (Running, Successful, Failed...).
    pub(crate) pre_promotion_analysis: Option<String>,
}

impl State {
    pub(crate) fn parse(json: &str) -> Result<State, String> {
        let rollout: Value = serde_json::from_str(json).map_err(|e| format!("cannot read the Rollout: {e}"))?;
        let text = |pointer: &str| match rollout.pointer(pointer) {
            Some(Value::String(text)) => text.clone(),
            Some(Value::Number(number)) => number.to_string(),
            _ => String::new(),
        };
        let phase = text("/status/phase");
        let reasons: Vec<String> = rollout
            .pointer("/status/pauseConditions")
            .and_then(Value::as_array)
            .map(|conditions| conditions.iter().filter_map(|c| c["reason"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        let step = rollout.pointer("/status/currentStepIndex").and_then(Value::as_u64);
        let timed_pause = step
            .and_then(|index| rollout.pointer(&format!("/spec/strategy/canary/steps/{index}/pause/duration")))
            .is_some();
        let paused_by_spec = rollout.pointer("/spec/paused").and_then(Value::as_bool).unwrap_or(false);
        let waits_for_promotion = phase == "Paused"
            && (reasons.iter().any(|reason| reason == "BlueGreenPause")
                || (reasons.iter().any(|reason| reason == "CanaryPauseStep") && !timed_pause)
                || paused_by_spec);
        let generation = text("/metadata/generation");
        let pre_promotion = text("/status/blueGreen/prePromotionAnalysisRunStatus/status");
        Ok(State {
            message: text("/status/message"),
            observed: !generation.is_empty() && generation == text("/status/observedGeneration"),
            image: text("/spec/template/spec/containers/0/image"),
            waits_for_promotion,
            pre_promotion_analysis: (!pre_promotion.is_empty()).then_some(pre_promotion),
            phase,
        })
    }

    fn describe(&self) -> String {
        let mut described = if self.phase.is_empty() { "no status yet".to_owned() } else { self.phase.clone() };
        if !self.message.is_empty() {
            described.push_str(&format!(" ({})", self.message));
        }
        if let Some(analysis) = &self.pre_promotion_analysis {
            described.push_str(&format!(", pre-promotion analysis {analysis}"));
        }
        described
    }
}

pub(crate) fn get(env: &Environment) -> Cmd {
    Cmd::new("kubectl")
        .args(["get", "rollout", &env.cluster.rollout, "-n", &env.cluster.namespace])
        .args(env.kube_context())
        .args(["-o", "json"])
}

pub(crate) fn plugin(env: &Environment, verb: &str) -> Cmd {
    // Flags after the plugin's name: kubectl refuses flags placed before a plugin.
    Cmd::new("kubectl")
        .args(["argo", "rollouts", verb, &env.cluster.rollout, "-n", &env.cluster.namespace])
        .args(env.kube_context())
}

/// The Rollout's current state.
pub(crate) fn state(ctx: &Context, env: &Environment) -> Result<State, String> {
    State::parse(&ctx.output(&get(env), "{}")?)
}

pub(crate) fn abort(ctx: &Context, env: &Environment) -> Result<(), String> {
    ctx.run(&plugin(env, "abort"))
}

/// Polls until the Rollout runs `digest` and is Healthy, promoting it when allowed.
pub(crate) fn wait_healthy(ctx: &Context, env: &Environment, digest: &Digest) -> Result<(), String> {
    let promote_cmd = plugin(env, "promote");
    if ctx.dry_run {
        ctx.output(&get(env), "")?;
        ctx.say(&format!("(polled every {} s until Healthy on {digest})", ctx.poll_interval.as_secs()));
        if env.release.auto_promote {
            ctx.say(&format!("(when paused for a promotion after a passed analysis: $ {promote_cmd})"));
        }
        return Ok(());
    }
    let image_suffix = format!("@{digest}");
    let timeout = env.release.timeout_seconds;
    let deadline = Instant::now() + std::time::Duration::from_secs(timeout);
    let mut last_seen = String::new();
    let mut promoted = false;
    let mut told = false;
    loop {
        let state = state(ctx, env)?;
        let described = state.describe();
        if described != last_seen {
            ctx.say(&format!("Rollout {}: {described}", env.cluster.rollout));
            last_seen = described;
        }
        let current = state.observed && state.image.ends_with(&image_suffix);
        if current {
            match state.phase.as_str() {
                "Healthy" => return Ok(()),
                "Degraded" => return Err(format!("the Rollout is Degraded: {}", state.describe())),
                _ if state.waits_for_promotion => {
                    let analysis_passed = state.pre_promotion_analysis.as_deref().is_none_or(|s| s == "Successful");
                    if env.release.auto_promote && analysis_passed && !promoted {
                        ctx.run(&promote_cmd)?;
                        promoted = true;
                    } else if !env.release.auto_promote && !told {
                        ctx.say(&format!(
                            "the Rollout waits for a promotion ({} does not promote by itself): $ {promote_cmd}",
                            env.name
                        ));
                        told = true;
                    }
                }
                _ => {}
            }
        }
        if Instant::now() >= deadline {
            let why = if current && state.waits_for_promotion && !promoted {
                format!("it still waits for a promotion that nobody made; promote it with `{promote_cmd}`")
            } else if current {
                format!("last seen: {}", state.describe())
            } else {
                format!("it does not run {digest} yet (spec image `{}`, {})", state.image, state.describe())
            };
            return Err(format!("the Rollout is not Healthy on {digest} after {timeout} s: {why}"));
        }
        ctx.pause(ctx.poll_interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollout(status: &str, spec_extra: &str) -> String {
        format!(
            r#"{{"metadata":{{"generation":4}},
                "spec":{{"template":{{"spec":{{"containers":[{{"image":"repo@sha256:abc"}}]}}}}{spec_extra}}},
                "status":{{"observedGeneration":"4",{status}}}}}"#
        )
    }

    #[test]
    fn reads_a_healthy_rollout() {
        let state = State::parse(&rollout(r#""phase":"Healthy""#, "")).unwrap();
        assert_eq!(state.phase, "Healthy");
        assert!(state.observed);
        assert_eq!(state.image, "repo@sha256:abc");
        assert!(!state.waits_for_promotion);
    }

    #[test]
    fn a_blue_green_pause_waits_for_promotion() {
        let status = r#""phase":"Paused","message":"BlueGreenPause","pauseConditions":[{"reason":"BlueGreenPause"}],
            "blueGreen":{"prePromotionAnalysisRunStatus":{"status":"Successful"}}"#;
        let state = State::parse(&rollout(status, "")).unwrap();
        assert!(state.waits_for_promotion);
        assert_eq!(state.pre_promotion_analysis.as_deref(), Some("Successful"));
    }

    #[test]
    fn a_timed_canary_pause_does_not_wait_for_promotion_but_an_open_one_does() {
        let steps = r#","strategy":{"canary":{"steps":[{"setWeight":10},{"pause":{"duration":"2m"}},{"pause":{}}]}}"#;
        let paused = |step: u32| {
            format!(r#""phase":"Paused","currentStepIndex":{step},"pauseConditions":[{{"reason":"CanaryPauseStep"}}]"#)
        };
        assert!(!State::parse(&rollout(&paused(1), steps)).unwrap().waits_for_promotion);
        assert!(State::parse(&rollout(&paused(2), steps)).unwrap().waits_for_promotion);
    }

    #[test]
    fn an_unobserved_spec_is_not_current() {
        let json = r#"{"metadata":{"generation":5},"status":{"observedGeneration":"4","phase":"Healthy"}}"#;
        assert!(!State::parse(json).unwrap().observed);
    }
}
