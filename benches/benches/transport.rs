//! Issue 13's transport benchmark: a bulk download from the aircraft to the remote over the
//! simulated radio, in virtual time, by rotorlink's storage channel and by QUIC (quinn-proto,
//! BBR and Cubic), over a grid of capacity x one-way delay x loss.
//!
//! ```text
//! cargo bench -p rotorlink-bench --bench transport                       # the whole grid
//! cargo bench -p rotorlink-bench --bench transport -- 20mbit 75ms        # a subset
//! cargo bench -p rotorlink-bench --bench transport -- --only rotorlink   # one system
//! cargo bench -p rotorlink-bench --bench transport -- --seed 7           # another radio
//! cargo bench -p rotorlink-bench --bench transport -- --queue-ms 20      # a shallow queue
//! cargo bench -p rotorlink-bench --bench transport -- --jitter-ms 10     # a jittery radio
//! cargo bench -p rotorlink-bench -- --test                # CI: one small point, asserted
//! ```
//!
//! Filters name a capacity (`5mbit`), a delay (`15ms`) or a loss (`0%`, `1%`, `10%`, `20%`,
//! `5%b8` for 5 % in bursts of 8); several of one kind are alternatives, kinds combine.
//! The seed (default 1, or `TRANSPORT_SEED`) seeds both radio directions, the same for
//! every system at a point, so each faces the same channel.
//!
//! For every point and system it reports the goodput (payload bytes delivered over the time
//! from the first byte sent to the last byte delivered) and the goodput over `(1 - p) C`,
//! the most the radio can carry. It prints a markdown table and writes
//! `target/transport-grid.md` (with per-run counters) and `target/transport-grid.svg`.
//!
//! The radio (see `transport/grid.rs`): both directions have the capacity, a drop-tail
//! queue of one bandwidth-delay product (at least 64 KiB; `--queue-ms N`: N ms of the
//! capacity, at least a datagram), the delay (`--jitter-ms N`: and up to N ms more for each
//! datagram, which reorders them) and the loss. Each
//! transfer is 8 s of the capacity, at least 4 MiB, so that steady state dominates; a run
//! that has not finished after 120 s of virtual time stops and is reported incomplete.

#[path = "transport/grid.rs"]
mod grid;
#[path = "transport/quinn_run.rs"]
mod quinn_run;
#[path = "transport/report.rs"]
mod report;
#[path = "transport/rotorlink_run.rs"]
mod rotorlink_run;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use grid::{Loss, Outcome, Point, RunParams, System};
use quinn_run::Congestion;
use report::Run;

/// The virtual-time cap of one run.
const CAP: Duration = Duration::from_secs(120);
const DEFAULT_SEED: u64 = 1;

/// What the command line asked for.
struct Args {
    test: bool,
    seed: u64,
    systems: Vec<System>,
    threads: usize,
    /// Filters by the part of a point's label they name: capacity, delay, loss.
    filters: [Vec<String>; 3],
    /// The radio's queue, in time at its capacity (`--queue-ms`).
    queue: Option<Duration>,
    /// The radio's jitter (`--jitter-ms`).
    jitter: Duration,
}

const USAGE: &str = "usage: transport [--test] [--seed N] [--only SYSTEM[,SYSTEM]] [--threads N] \
                     [--queue-ms N] [--jitter-ms N] [FILTER...]\n  SYSTEM: rotorlink, \
                     quinn-bbr, quinn-cubic\n  FILTER: a capacity (5mbit, 20mbit, 100mbit), \
                     delay (5ms, 15ms, 75ms) or loss (0%, 1%, 10%, 20%, 5%b8)";

fn parse_args() -> Result<Args, String> {
    let seed = match std::env::var("TRANSPORT_SEED") {
        Ok(v) => v
            .parse()
            .map_err(|_| format!("TRANSPORT_SEED={v}: not a number"))?,
        Err(_) => DEFAULT_SEED,
    };
    let mut args = Args {
        test: false,
        seed,
        systems: System::ALL.to_vec(),
        threads: std::thread::available_parallelism().map_or(2, usize::from),
        filters: Default::default(),
        queue: None,
        jitter: Duration::ZERO,
    };
    // Every label part of the grid, by position, to tell which kind a filter is.
    let parts: Vec<Vec<String>> = Point::grid()
        .iter()
        .map(|p| p.label().split('/').map(str::to_string).collect())
        .collect();
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--test" => args.test = true,
            // cargo bench passes --bench to every bench binary.
            "--bench" => {}
            "--seed" => {
                let v = value("--seed")?;
                args.seed = v.parse().map_err(|_| format!("--seed {v}: not a number"))?;
            }
            "--threads" => {
                let v = value("--threads")?;
                args.threads = v
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or(format!("--threads {v}: not a positive number"))?;
            }
            "--queue-ms" => {
                let v = value("--queue-ms")?;
                let ms: u64 = v
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or(format!("--queue-ms {v}: not a positive number"))?;
                args.queue = Some(Duration::from_millis(ms));
            }
            "--jitter-ms" => {
                let v = value("--jitter-ms")?;
                let ms: u64 = v
                    .parse()
                    .map_err(|_| format!("--jitter-ms {v}: not a number"))?;
                args.jitter = Duration::from_millis(ms);
            }
            "--only" => {
                let v = value("--only")?;
                args.systems = v
                    .split(',')
                    .map(|name| {
                        System::ALL
                            .into_iter()
                            .find(|s| s.name() == name)
                            .ok_or(format!("--only {name}: unknown system"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            "-h" | "--help" => return Err(String::new()),
            // Flags meant for the criterion benches of the same `cargo bench` run.
            flag if flag.starts_with('-') => eprintln!("transport: ignoring {flag}"),
            filter => {
                let filter = filter.to_lowercase();
                let kind = (0..3)
                    .find(|&k| parts.iter().any(|p| p[k] == filter))
                    .ok_or(format!(
                        "{filter}: matches no capacity, delay or loss of the grid"
                    ))?;
                args.filters[kind].push(filter);
            }
        }
    }
    Ok(args)
}

impl Args {
    fn selects(&self, point: &Point) -> bool {
        let label = point.label();
        label
            .split('/')
            .zip(&self.filters)
            .all(|(part, filters)| filters.is_empty() || filters.iter().any(|f| f == part))
    }
}

fn run_one(point: &Point, system: System, params: RunParams) -> Outcome {
    match system {
        System::Rotorlink => rotorlink_run::run(point, params),
        System::QuinnBbr => quinn_run::run(point, params, Congestion::Bbr),
        System::QuinnCubic => quinn_run::run(point, params, Congestion::Cubic),
    }
}

/// Run every job on `threads` threads, the largest transfers first so that the last ones
/// to finish are short; the runs come back in grid order.
fn run_all(jobs: Vec<(Point, System)>, params: RunParams, threads: usize) -> Vec<Run> {
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(jobs[i].0.transfer));
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Run>>> = Mutex::new(vec![None; jobs.len()]);
    std::thread::scope(|scope| {
        for _ in 0..threads.min(jobs.len()) {
            scope.spawn(|| {
                while let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let (point, system) = jobs[i];
                    let outcome = run_one(&point, system, params);
                    let run = Run {
                        point,
                        system,
                        outcome,
                    };
                    let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                    eprintln!(
                        "[{n}/{}] {} {}: {} Mbit/s, ratio {}{} ({:.1} s)",
                        jobs.len(),
                        point.label(),
                        system.name(),
                        run.outcome
                            .goodput_bps()
                            .map_or("-".into(), |g| format!("{:.2}", g / 1e6)),
                        run.ratio().map_or("-".into(), |r| format!("{r:.2}")),
                        if run.outcome.complete {
                            ""
                        } else {
                            " INCOMPLETE"
                        },
                        run.outcome.wall.as_secs_f64()
                    );
                    results.lock().expect("no run panics")[i] = Some(run);
                }
            });
        }
    });
    results
        .into_inner()
        .expect("no run panics")
        .into_iter()
        .map(|r| r.expect("every job ran"))
        .collect()
}

/// Where the files go: the target directory cargo uses.
fn out_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")),
        PathBuf::from,
    )
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("transport: {e}");
            }
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    let params = RunParams {
        seed: args.seed,
        cap: CAP,
    };
    let points: Vec<Point> = if args.test {
        // CI: one small point per system, asserted to finish.
        vec![Point {
            transfer: 1 << 20,
            ..Point::new(20_000_000, 15, Loss::Random(0.01))
        }]
    } else {
        Point::grid()
            .into_iter()
            .filter(|p| args.selects(p))
            .map(|p| Point {
                queue: args.queue,
                jitter: args.jitter,
                ..p
            })
            .collect()
    };
    let jobs: Vec<(Point, System)> = points
        .iter()
        .flat_map(|p| args.systems.iter().map(move |s| (*p, *s)))
        .collect();
    let queue = args.queue.map_or("max(64 KiB, BDP)".to_string(), |q| {
        format!("{} ms of capacity (--queue-ms)", q.as_millis())
    });
    let setup = format!(
        "seed {} (--seed or TRANSPORT_SEED), {} s virtual-time cap, 1400-byte datagrams, \
         queue {queue}, jitter {} ms, transfer max(4 MiB, 8 s of capacity)",
        params.seed,
        params.cap.as_secs(),
        args.jitter.as_millis()
    );
    println!(
        "transport: {} runs on {} threads; {setup}",
        jobs.len(),
        args.threads
    );
    let wall = Instant::now();
    let runs = run_all(jobs, params, args.threads);
    let wall = wall.elapsed();
    let table = report::table(&runs, &args.systems);
    println!("\n{table}\nwall time {:.1} s", wall.as_secs_f64());

    if args.test {
        for run in &runs {
            assert!(
                run.outcome.complete,
                "{} {} did not finish: {:?}",
                run.point.label(),
                run.system.name(),
                run.outcome.notes
            );
        }
        return;
    }
    let dir = out_dir();
    let md = format!(
        "# Transport grid: rotorlink vs quinn over the simulated radio\n\n{setup}.\n\
         Goodput: payload bytes delivered / (last byte delivered - first byte sent); ratio: \
         goodput / ((1 - p) C).\n\n{table}\n## Per run\n\n{}\nwall time {:.1} s\n",
        report::details(&runs),
        wall.as_secs_f64()
    );
    let svg = report::svg(&runs, &args.systems, &setup);
    for (name, contents) in [("transport-grid.md", md), ("transport-grid.svg", svg)] {
        let path = dir.join(name);
        match std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, contents)) {
            Ok(()) => println!("wrote {}", path.display()),
            Err(e) => eprintln!("transport: cannot write {}: {e}", path.display()),
        }
    }
}
