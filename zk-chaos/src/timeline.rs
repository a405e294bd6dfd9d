//! A picture of the run: one HTML page with two SVGs. The timeline has one lane per client,
//! each operation a bar from invoke to completion coloured by outcome (green ok, red fail,
//! orange unknown), fault windows shaded by kind (server faults across every lane, client
//! faults on their client's lane) and violations marked by red lines. Below, latency over time
//! (log scale). Hover anything for details.

use crate::checker::Violation;
use crate::history::{History, Outcome};
use std::collections::BTreeMap;
use std::fmt::Write as _;

const WIDTH: f64 = 1800.0;
const LEFT: f64 = 140.0;
const LANE: f64 = 14.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn fault_color(kind: &str) -> &'static str {
    match kind {
        "reset" => "#9467bd",
        "blackhole" => "#555555",
        "delay" => "#17becf",
        "cut" => "#e377c2",
        "expire" | "expire-admitted" => "#8c564b",
        "delete-admission" => "#7f7f7f",
        "pause" => "#1f77b4",
        "kill" => "#d62728",
        "leader-kill" => "#ff7f0e",
        "partition" | "partition-leader" | "partition-follower" => "#bcbd22",
        _ => "#999999",
    }
}

/// Renders the page.
pub fn render(h: &History, violations: &[Violation], title: &str) -> String {
    let end_us = h.events.iter().map(|e| e.t_us).max().unwrap_or(1).max(1);
    let x = |t: u64| LEFT + (t.min(end_us) as f64 / end_us as f64) * (WIDTH - LEFT - 10.0);
    let mut clients: BTreeMap<i64, String> = BTreeMap::new();
    for o in h.ops.iter().filter(|o| o.client >= 0) {
        clients
            .entry(o.client)
            .or_insert_with(|| o.workload.clone());
    }
    let lane: BTreeMap<i64, usize> = clients.keys().enumerate().map(|(i, c)| (*c, i)).collect();
    let top = 30.0;
    let height = top + LANE * clients.len() as f64 + 30.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="monospace" font-size="10">"#
    );
    // time axis
    let secs = end_us / 1_000_000;
    let step = (secs / 20).max(1);
    for s in (0..=secs).step_by(step as usize) {
        let xs = x(s * 1_000_000);
        let _ = writeln!(
            svg,
            r##"<line x1="{xs:.1}" y1="{top}" x2="{xs:.1}" y2="{:.1}" stroke="#eee"/><text x="{xs:.1}" y="{:.1}">{s}s</text>"##,
            height - 20.0,
            top - 8.0
        );
    }
    // fault windows: pair each fault with its end
    let mut open: Vec<(u64, serde_json::Value)> = Vec::new();
    let mut windows = Vec::new();
    for e in h.infos.iter().filter(|e| e.workload == "nemesis") {
        match e.op.as_str() {
            "fault" => open.push((e.t_us, e.args.clone())),
            "fault-end" => {
                let key = |a: &serde_json::Value| {
                    (
                        a.get("n").cloned(),
                        a.get("kind").cloned(),
                        a.get("client").cloned(),
                        a.get("dur_ms").cloned(),
                    )
                };
                if let Some(i) = open.iter().position(|(_, a)| key(a) == key(&e.args)) {
                    let (t0, a) = open.remove(i);
                    windows.push((t0, e.t_us, a));
                }
            }
            _ => {}
        }
    }
    windows.extend(open.into_iter().map(|(t0, a)| (t0, end_us, a)));
    for (t0, t1, a) in &windows {
        let kind = a.get("kind").and_then(|v| v.as_str()).unwrap_or("?");
        let (y, hgt) = match a
            .get("client")
            .and_then(|v| v.as_i64())
            .and_then(|c| lane.get(&c))
        {
            Some(&l) => (top + LANE * l as f64, LANE),
            None => (top, LANE * clients.len() as f64),
        };
        let w = (x(*t1) - x(*t0)).max(2.0);
        let _ = writeln!(
            svg,
            r#"<rect x="{:.1}" y="{y:.1}" width="{w:.1}" height="{hgt:.1}" fill="{}" opacity="0.25"><title>{} {}</title></rect>"#,
            x(*t0),
            fault_color(kind),
            esc(kind),
            esc(&a.to_string())
        );
    }
    // lanes and operations
    for (c, w) in &clients {
        let y = top + LANE * lane[c] as f64;
        let _ = writeln!(
            svg,
            r#"<text x="2" y="{:.1}">{c} {}</text>"#,
            y + 10.0,
            esc(w)
        );
    }
    for o in h.ops.iter().filter(|o| o.client >= 0) {
        let y = top + LANE * lane[&o.client] as f64 + 2.0;
        let color = match o.outcome {
            Outcome::Ok => "#2ca02c",
            Outcome::Fail => "#d62728",
            Outcome::Unknown => "#ff7f0e",
        };
        let x0 = x(o.invoke_us);
        let w = (x(o.complete_us.unwrap_or(end_us)) - x0).max(1.0);
        let _ = writeln!(
            svg,
            r#"<rect x="{x0:.1}" y="{y:.1}" width="{w:.1}" height="{:.1}" fill="{color}"><title>{} {} {} {:?} {}</title></rect>"#,
            LANE - 4.0,
            o.id,
            esc(&o.op),
            esc(&o.args.to_string()),
            o.outcome,
            esc(o.error.as_deref().unwrap_or(""))
        );
    }
    for v in violations {
        let t = if v.t_us == u64::MAX { end_us } else { v.t_us };
        let _ = writeln!(
            svg,
            r#"<line x1="{:.1}" y1="{}" x2="{:.1}" y2="{:.1}" stroke="red" stroke-width="2"><title>{}</title></line>"#,
            x(t),
            top - 5.0,
            x(t),
            height - 20.0,
            esc(&format!("{}: {}", v.checker, v.message))
        );
    }
    svg.push_str("</svg>\n");

    // latency over time, log scale from 0.1 ms to 20 s
    let lh = 300.0;
    let y_of = |us: u64| {
        let ms = (us.max(100) as f64 / 1000.0).log10(); // -1 ..= 4.3
        10.0 + (1.0 - (ms + 1.0) / 5.3) * (lh - 30.0)
    };
    let mut lat = String::new();
    let _ = writeln!(
        lat,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{lh}" font-family="monospace" font-size="10">"#
    );
    for ms in [1u64, 10, 100, 1000, 10000] {
        let y = y_of(ms * 1000);
        let _ = writeln!(
            lat,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{WIDTH}" y2="{y:.1}" stroke="#eee"/><text x="2" y="{y:.1}">{ms} ms</text>"##
        );
    }
    for (t0, t1, a) in &windows {
        let kind = a.get("kind").and_then(|v| v.as_str()).unwrap_or("?");
        let _ = writeln!(
            lat,
            r#"<rect x="{:.1}" y="0" width="{:.1}" height="{lh}" fill="{}" opacity="0.15"/>"#,
            x(*t0),
            (x(*t1) - x(*t0)).max(2.0),
            fault_color(kind)
        );
    }
    for o in h.ops.iter().filter(|o| o.client >= 0) {
        let Some(t1) = o.complete_us else { continue };
        let color = match o.outcome {
            Outcome::Ok => "#2ca02c",
            Outcome::Fail => "#d62728",
            Outcome::Unknown => "#ff7f0e",
        };
        let _ = writeln!(
            lat,
            r#"<circle cx="{:.1}" cy="{:.1}" r="1.5" fill="{color}"/>"#,
            x(t1),
            y_of(t1.saturating_sub(o.invoke_us))
        );
    }
    lat.push_str("</svg>\n");

    let mut legend = String::new();
    for k in [
        "reset",
        "blackhole",
        "delay",
        "cut",
        "expire",
        "pause",
        "kill",
        "leader-kill",
    ] {
        let _ = write!(
            legend,
            r#"<span style="background:{};opacity:0.6;padding:0 6px;margin-right:6px">{k}</span>"#,
            fault_color(k)
        );
    }
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title></head><body style=\"font-family:sans-serif\">\
         <h2>{t}</h2><p>operations: <span style=\"color:#2ca02c\">ok</span> / <span style=\"color:#d62728\">fail</span> / \
         <span style=\"color:#ff7f0e\">unknown</span>; faults: {legend}; violations: red lines ({n}). Hover for details.</p>\
         {svg}<h3>latency (log scale) over time</h3>{lat}</body></html>\n",
        t = esc(title),
        n = violations.len()
    )
}
