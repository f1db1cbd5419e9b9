//! The comparison's results: each run recorded as it ends, then written out as the markdown
//! table (medians, ranges, ratios, what limited each figure, the cross-check) and as JSON.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;

impl Results {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn record(
        &mut self,
        plan: &Plan,
        rep: usize,
        step: Step,
        kind: Kind,
        tool: Tool,
        outcome: Outcome,
        attempts: usize,
    ) {
        self.runs.push(json!({
            "rep": rep,
            "attempts": attempts,
            "scenario": step.name(&plan.sizes),
            "server": kind.name(),
            "tool": tool.name(),
            "values": outcome.values,
            "server_cpu_use_percent": outcome.usage.0,
            "load_generator_cpu_use_percent": outcome.usage.1,
            "rest_of_machine_cpu_use_percent": outcome.usage.2,
            "notes": outcome.notes,
            "error": outcome.error,
        }));
        if let Some(error) = outcome.error {
            self.errors.entry((tool, kind, step)).or_default().push(error);
            return;
        }
        for (key, value) in outcome.values {
            self.values.entry((tool, kind, key)).or_default().push(value);
        }
        self.usage.entry((tool, kind, step)).or_default().push(outcome.usage);
        self.notes.entry((tool, kind, step)).or_default().extend(outcome.notes);
    }

    /// Median of a measure's values, scaled for display.
    fn median(&self, tool: Tool, kind: Kind, measure: &Measure) -> Option<f64> {
        let values = self.values.get(&(tool, kind, measure.key))?;
        median(values).map(|v| v / measure.scale)
    }

    /// A table cell: the median, the range over repetitions, notes, or why there is no figure.
    fn cell(&self, tool: Tool, kind: Kind, measure: &Measure, missing: &BTreeMap<Kind, String>) -> String {
        if missing.contains_key(&kind) {
            return "not installed".into();
        }
        let Some(values) = self.values.get(&(tool, kind, measure.key)) else {
            return match self.errors.get(&(tool, kind, measure.step)) {
                Some(errors) => format!("failed: {}", short(&errors[0])),
                None => "—".into(),
            };
        };
        let show = |v: f64| number(v / measure.scale, measure.digits);
        let mut text = show(median(values).unwrap_or(0.0));
        if values.len() > 1 {
            let (min, max) = min_max(values);
            let _ = write!(text, " ({}–{})", show(min), show(max));
        }
        let failed = self.errors.get(&(tool, kind, measure.step)).map_or(0, Vec::len);
        if failed > 0 {
            let _ = write!(text, ", {failed} run(s) failed");
        }
        if let Some(notes) = self.notes.get(&(tool, kind, measure.step))
            && !notes.is_empty()
            && matches!(
                measure.key,
                "fanout_large_rate"
                    | "fanout_small_rate"
                    | "connect_rate"
                    | "trigger_rate"
                    | "client_delivered"
                    | "churn_rate"
            )
        {
            let _ = write!(text, " [{}]", notes.join("; "));
        }
        text
    }

    pub(super) fn markdown(&self, plan: &Plan, missing: &BTreeMap<Kind, String>) -> String {
        let tool = plan.tool;
        let mut md = String::new();
        let servers = &plan.servers;
        let herald = servers.contains(&Kind::Herald);
        let others: Vec<Kind> = servers.iter().copied().filter(|k| *k != Kind::Herald).collect();
        let _ = writeln!(
            md,
            "Measured by {}, median of {} repetition(s) (range in parentheses); each server started fresh for \
             every scenario, pinned to one CPU. Ratios are Herald ÷ the other server, so above 1 is better for \
             Herald on rates (↑) and below 1 is better for Herald on CPU, latency and memory (↓).\n",
            tool.name(),
            plan.reps
        );
        let mut header = String::from("| Measure (what is counted) | unit |");
        let mut rule = String::from("|---|---|");
        for kind in servers {
            let _ = write!(header, " {} |", title(*kind));
            rule.push_str("---|");
        }
        if herald {
            for kind in &others {
                let _ = write!(header, " Herald ÷ {} |", title(*kind));
                rule.push_str("---|");
            }
        }
        let _ = writeln!(md, "{header}\n{rule}");
        for measure in MEASURES.iter().filter(|m| plan.steps.contains(&m.step)) {
            if tool == Tool::Pushbench && measure.key == "churn_growth_warm" {
                continue; // pushbench samples RSS at the start and the end only
            }
            let arrow = if measure.better == Better::Higher { "↑" } else { "↓" };
            let _ = write!(md, "| {} | {} {arrow} |", measure.label(&plan.sizes), measure.unit);
            for kind in servers {
                let _ = write!(md, " {} |", self.cell(tool, *kind, measure, missing));
            }
            if herald {
                let ours = self.median(tool, Kind::Herald, measure);
                for kind in &others {
                    let ratio = match (ours, self.median(tool, *kind, measure)) {
                        (Some(a), Some(b)) if a > 0.0 && b > 0.0 => format!("{:.2}", a / b),
                        _ => "—".into(),
                    };
                    let _ = write!(md, " {ratio} |");
                }
            }
            md.push('\n');
        }

        let _ = writeln!(
            md,
            "\nWhat limited each figure: CPU use during the measured phase, in % of one core: server / load \
             generator / rest of the machine (other processes, kernel threads, interrupts), median over \
             repetitions. The server is pinned to one core and the load generator to the other: a side at \
             {LIMIT} % or more was the limit; when neither is, the scenario's own pace (a fixed rate, the \
             16-trigger window, round trips) was. \"busy machine\": the rest used {DISTURBED} % or more.\n"
        );
        let mut header = String::from("| Scenario |");
        let mut rule = String::from("|---|");
        for kind in servers {
            let _ = write!(header, " {} |", title(*kind));
            rule.push_str("---|");
        }
        let _ = writeln!(md, "{header}\n{rule}");
        for step in STEPS.into_iter().filter(|step| plan.steps.contains(step)) {
            let _ = write!(md, "| {} |", step.name(&plan.sizes));
            for kind in servers {
                let _ = write!(md, " {} |", self.limit_cell(tool, *kind, step));
            }
            md.push('\n');
        }

        if !plan.cross_check.is_empty() {
            let other = tool.other();
            let _ = writeln!(
                md,
                "\nCross-check: the same scenarios measured by {} and {} (medians; each tool against its own \
                 fresh server; fan-out publishers: herald-bench 4, pushbench {}). ⚠ marks a disagreement over \
                 20 %.\n",
                tool.name(),
                other.name(),
                plan.pushbench_publishers
            );
            let mut header = String::from("| Measure |");
            let mut rule = String::from("|---|");
            for kind in &plan.cross_check {
                let _ =
                    write!(header, " {} {} | {} {} | ratio |", title(*kind), tool.name(), title(*kind), other.name());
                rule.push_str("---|---|---|");
            }
            let _ = writeln!(md, "{header}\n{rule}");
            for measure in MEASURES.iter().filter(|m| m.key != "churn_growth_warm" && plan.steps.contains(&m.step)) {
                let _ = write!(md, "| {} ({}) |", short_label(measure), measure.unit);
                for kind in &plan.cross_check {
                    let a = self.median(tool, *kind, measure);
                    let b = self.median(other, *kind, measure);
                    let ratio = match (a, b) {
                        (Some(a), Some(b)) if a > 0.0 && b > 0.0 => {
                            let r = a / b;
                            let flag = if !(0.8..=1.2).contains(&r) { " ⚠" } else { "" };
                            format!("{r:.2}{flag}")
                        }
                        _ => "—".into(),
                    };
                    let _ = write!(
                        md,
                        " {} | {} | {ratio} |",
                        self.cell(tool, *kind, measure, missing),
                        self.cell(other, *kind, measure, missing)
                    );
                }
                md.push('\n');
            }
            let _ = writeln!(
                md,
                "\nCPU use in the cross-check runs (server / load generator / rest of the machine, % of one core):\n"
            );
            let mut header = String::from("| Scenario |");
            let mut rule = String::from("|---|");
            for kind in &plan.cross_check {
                let _ = write!(header, " {} {} | {} {} |", title(*kind), tool.name(), title(*kind), other.name());
                rule.push_str("---|---|");
            }
            let _ = writeln!(md, "{header}\n{rule}");
            for step in STEPS.into_iter().filter(|step| plan.steps.contains(step)) {
                let _ = write!(md, "| {} |", step.name(&plan.sizes));
                for kind in &plan.cross_check {
                    let _ = write!(
                        md,
                        " {} | {} |",
                        self.limit_cell(tool, *kind, step),
                        self.limit_cell(other, *kind, step)
                    );
                }
                md.push('\n');
            }
        }
        if !missing.is_empty() {
            md.push('\n');
            for (kind, what) in missing {
                let _ = writeln!(md, "- {} was not measured: {what}", title(*kind));
            }
        }
        md
    }

    /// "99 / 45 / 3 % → server": server, load generator, rest of the machine.
    fn limit_cell(&self, tool: Tool, kind: Kind, step: Step) -> String {
        let Some(usage) = self.usage.get(&(tool, kind, step)) else {
            return "—".into();
        };
        let pick = |f: fn(&Usage) -> Option<f64>| median(&usage.iter().filter_map(f).collect::<Vec<_>>());
        let (server, bench, other) = (pick(|u| u.0), pick(|u| u.1), pick(|u| u.2));
        let show = |v: Option<f64>| v.map_or("?".into(), |v| format!("{v:.0}"));
        let limit = match (server.is_some_and(|s| s >= LIMIT), bench.is_some_and(|b| b >= LIMIT)) {
            (true, true) => "both",
            (true, false) => "server",
            (false, true) => "load generator",
            (false, false) => "neither",
        };
        let disturbed = if other.is_some_and(|o| o >= DISTURBED) { " (busy machine)" } else { "" };
        format!("{} / {} / {} % → {limit}{disturbed}", show(server), show(bench), show(other))
    }

    pub(super) fn json(&self, plan: &Plan, missing: &BTreeMap<Kind, String>) -> Value {
        let mut measures = Vec::new();
        for measure in &MEASURES {
            for tool in [Tool::HeraldBench, Tool::Pushbench] {
                for kind in &plan.servers {
                    let Some(values) = self.values.get(&(tool, *kind, measure.key)) else { continue };
                    measures.push(json!({
                        "measure": measure.key,
                        "label": measure.label(&plan.sizes),
                        "unit": measure.unit,
                        "better": if measure.better == Better::Higher { "higher" } else { "lower" },
                        "tool": tool.name(),
                        "server": kind.name(),
                        "values": values.iter().map(|v| v / measure.scale).collect::<Vec<_>>(),
                        "median": median(values).map(|v| v / measure.scale),
                    }));
                }
            }
        }
        let sizes = &plan.sizes;
        json!({
            "command": std::env::args().collect::<Vec<_>>(),
            "machine": crate::machine(),
            "tool": plan.tool.name(),
            "reps": plan.reps,
            "servers": plan.servers.iter().map(|k| k.name()).collect::<Vec<_>>(),
            "cross_check": plan.cross_check.iter().map(|k| k.name()).collect::<Vec<_>>(),
            "steps": plan.steps.iter().map(|s| s.name(&plan.sizes)).collect::<Vec<_>>(),
            "pushbench_publishers": plan.pushbench_publishers,
            "not_measured": missing.iter().map(|(k, v)| (k.name(), v.clone())).collect::<BTreeMap<_, _>>(),
            "sizes": {
                "connections": sizes.connections, "channels": sizes.channels,
                "subscribers": sizes.subscribers, "secs": sizes.secs.as_secs(),
                "trigger_connections": sizes.trigger_connections, "pairs": sizes.pairs,
                "churn_secs": sizes.churn.as_secs(),
            },
            "measures": measures,
            "runs": self.runs,
        })
    }
}

pub(super) fn short_label(measure: &Measure) -> &'static str {
    match measure.key {
        "fanout_large_rate" => "fan-out deliveries/s, large",
        "fanout_large_cpu" => "CPU per delivery, large",
        "fanout_small_rate" => "fan-out deliveries/s, small",
        "fanout_small_cpu" => "CPU per delivery, small",
        "connect_rate" => "connect+subscribe/s",
        "connect_cpu" => "CPU per connect+subscribe",
        "trigger_rate" => "REST triggers/s",
        "trigger_cpu" => "CPU per trigger",
        "client_p50" => "client events p50",
        "client_p99" => "client events p99",
        "client_delivered" => "client events delivered",
        "rss_per_connection" => "RSS per connection",
        "churn_growth" => "churn RSS growth",
        "churn_growth_warm" => "churn RSS growth after warm-up",
        "churn_rate" => "churn cycles/s",
        _ => "",
    }
}

pub(super) fn title(kind: Kind) -> &'static str {
    match kind {
        Kind::Herald => "Herald",
        Kind::Soketi => "soketi",
        Kind::Sockudo => "sockudo",
        Kind::Floor => "floor (limit)",
    }
}

pub(super) fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len() % 2 == 1 { sorted[mid] } else { (sorted[mid - 1] + sorted[mid]) / 2.0 })
}

pub(super) fn min_max(values: &[f64]) -> (f64, f64) {
    values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(*v), hi.max(*v)))
}

/// A number with thousands separators (`12,345`) or with `digits` decimals.
pub(super) fn number(value: f64, digits: usize) -> String {
    if digits == 0 { thousands(value.round().max(0.0) as usize) } else { format!("{value:.digits$}") }
}

pub(super) fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The first line of an error, short enough for a table cell, without pipes.
pub(super) fn short(error: &str) -> String {
    let line = error.lines().next().unwrap_or_default().replace('|', "/");
    if line.chars().count() > 80 { format!("{}…", line.chars().take(80).collect::<String>()) } else { line }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_for_tables() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(number(1.2345, 2), "1.23");
        assert_eq!(number(41_999.6, 0), "42,000");
    }

    #[test]
    fn medians_and_ranges() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(min_max(&[2.0, 5.0, 1.0]), (1.0, 5.0));
    }
}
