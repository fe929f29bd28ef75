//! `messaging-sim [--seed N] [--out DIR] [--bench FILE] [--chat-seconds S] [SCENARIO…]`:
//! runs the scenarios of docs/scale.md (all of them by default: validation, storm,
//! announcement, chatting) and writes `DIR/results.md` (the tables) and one CSV per plot.
//! `./infra/local/simulate.sh` runs it in release and draws the plots.

use std::path::PathBuf;
use std::time::Instant;

use messaging_sim::scenarios;

fn main() {
    let mut seed = 1u64;
    let mut out = PathBuf::from("docs/scale");
    let mut bench = PathBuf::from("bench/results/latest.json");
    let mut chat_seconds = 10.0;
    let mut wanted: Vec<String> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .unwrap_or_else(|| die(&format!("{name} needs a value")))
        };
        match a.as_str() {
            "--seed" => {
                seed = value("--seed")
                    .parse()
                    .unwrap_or_else(|_| die("--seed: a number"))
            }
            "--out" => out = value("--out").into(),
            "--bench" => bench = value("--bench").into(),
            "--chat-seconds" => {
                chat_seconds = value("--chat-seconds")
                    .parse()
                    .unwrap_or_else(|_| die("--chat-seconds: a number"))
            }
            "-h" | "--help" => {
                println!("messaging-sim [--seed N] [--out DIR] [--bench FILE] [--chat-seconds S] [validation|storm|announcement|chatting]…");
                return;
            }
            s if s.starts_with('-') => die(&format!("unknown option {s}")),
            s => wanted.push(s.to_string()),
        }
    }
    let all = ["validation", "storm", "announcement", "chatting"];
    if wanted.is_empty() {
        wanted = all.iter().map(|s| s.to_string()).collect();
    }
    if let Some(w) = wanted.iter().find(|w| !all.contains(&w.as_str())) {
        die(&format!("unknown scenario {w}: one of {}", all.join(", ")));
    }
    std::fs::create_dir_all(&out).unwrap_or_else(|e| die(&format!("{}: {e}", out.display())));
    let mut md = format!("# Simulated scenarios (seed {seed})\n\nWritten by `messaging-sim` (crates/messaging-sim); the model and what each column means: docs/scale.md.\n");
    for name in &wanted {
        let started = Instant::now();
        let outcome = match name.as_str() {
            "validation" => {
                let text = std::fs::read_to_string(&bench)
                    .unwrap_or_else(|e| die(&format!("{}: {e}", bench.display())));
                let json = serde_json::from_str(&text)
                    .unwrap_or_else(|e| die(&format!("{}: {e}", bench.display())));
                scenarios::validation(&json, seed)
            }
            "storm" => scenarios::connect_storm(seed),
            "announcement" => scenarios::announcement(seed),
            _ => scenarios::chatting(seed, chat_seconds),
        };
        eprintln!("{name}: {:.1} s", started.elapsed().as_secs_f64());
        md.push_str(&format!("\n## {}\n\n{}", outcome.name, outcome.markdown));
        for (file, csv) in outcome.files {
            std::fs::write(out.join(&file), csv).unwrap_or_else(|e| die(&format!("{file}: {e}")));
        }
    }
    let file = out.join("results.md");
    std::fs::write(&file, md).unwrap_or_else(|e| die(&format!("{}: {e}", file.display())));
    println!("{}", file.display());
}

fn die(message: &str) -> ! {
    eprintln!("messaging-sim: {message}");
    std::process::exit(2);
}
