//! `rotorlink proxy`: the simulated radio between two real UDP endpoints.
//!
//! The radio starts perfect (no delay, no loss, nothing else: unlike `sim`, which starts
//! from the demo's radio) and every flag adds an impairment, the same both ways.

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use rotorlink_sim::net::{DirectionStats, Proxy, ProxyStats};
use rotorlink_sim::ChannelConfig;

use super::args::{self, flag_error, FlagError, RadioArgs};
use super::units::{self, show_duration};

/// `rotorlink proxy`.
#[derive(Debug, Clone, Args)]
#[command(
    after_help = "The radio starts perfect (no delay, no loss, no limits); every flag adds an \
                  impairment, the same both ways. Exit status: 0 done, 2 bad flag, 1 socket \
                  error.",
    mut_arg("delay", |a| a.help("Fixed one-way delay, e.g. 10ms [default: 0]")),
    mut_arg("jitter", |a| a.help("Extra random delay per datagram, uniform in 0..=DURATION, \
                                  e.g. 3ms [default: 0]")),
    mut_arg("duplicate", |a| a.help("Datagrams that arrive twice, e.g. 0.5% [default: 0%]")),
    mut_arg("corrupt", |a| a.help("Datagrams with one bit flipped, e.g. 0.1% [default: 0%]")),
    mut_arg("mtu", |a| a.help("Largest datagram the radio carries, in bytes (400..=16384); \
                               larger ones are dropped [default: no limit]")),
)]
pub(crate) struct ProxyArgs {
    /// Where the client (the remote) sends its datagrams, e.g. 127.0.0.1:7000; port 0 picks
    /// a free one (the line on standard error tells which).
    #[arg(long, value_name = "ADDR")]
    pub(crate) listen: SocketAddr,
    /// Where they go (the aircraft), e.g. 127.0.0.1:7001; its replies go back to the latest
    /// client.
    #[arg(long, value_name = "ADDR")]
    pub(crate) forward: SocketAddr,
    /// Datagrams lost, e.g. 5% or 0.05 [default: 0%].
    #[arg(long, value_name = "PERCENT", value_parser = units::percent)]
    pub(crate) loss: Option<f64>,
    /// Stop after this long, e.g. 60s, 2min [default: until Ctrl-C].
    #[arg(long, value_name = "DURATION", value_parser = units::flight_duration)]
    pub(crate) duration: Option<Duration>,
    /// Seed of every random choice of the radio.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub(crate) seed: u64,
    /// Print the statistics as JSON and nothing else on standard output.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) radio: RadioArgs,
}

/// The radio the proxy starts from: perfect, no delay.
fn perfect() -> ChannelConfig {
    ChannelConfig {
        delay: Duration::ZERO,
        ..ChannelConfig::default()
    }
}

/// The radio of both directions: [`perfect`] with the flags applied.
fn radio(a: &ProxyArgs) -> Result<ChannelConfig, FlagError> {
    args::radio(&perfect(), a.loss, &a.radio)
}

/// Run the proxy.
pub(crate) fn run(a: &ProxyArgs) -> ExitCode {
    let config = match radio(a) {
        Ok(c) => c,
        Err(e) => return flag_error(&e),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rotorlink: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve(a, config))
}

/// Resolves after `duration` (if any) or at Ctrl-C, whichever comes first.
async fn stop(duration: Option<Duration>) {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            // No signal handling: only the duration (if any) stops the proxy.
            std::future::pending::<()>().await;
        }
    };
    match duration {
        Some(d) => tokio::select! {
            () = tokio::time::sleep(d) => {}
            () = ctrl_c => {}
        },
        None => ctrl_c.await,
    }
}

async fn serve(a: &ProxyArgs, config: ChannelConfig) -> ExitCode {
    let uplink = args::uplink(config.clone(), &a.radio);
    let proxy = match Proxy::bind(a.listen, a.forward, uplink, config.clone(), a.seed).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("rotorlink: cannot proxy {} to {}: {e}", a.listen, a.forward);
            return ExitCode::FAILURE;
        }
    };
    let listen = proxy.local_addr().unwrap_or(a.listen);
    eprintln!("proxy: {listen} -> {}", a.forward);
    let started = Instant::now();
    let stats = match proxy.run(stop(a.duration)).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rotorlink: proxy {listen} -> {}: {e}", a.forward);
            return ExitCode::FAILURE;
        }
    };
    let elapsed = started.elapsed();
    if a.json {
        let json = serde_json::json!({
            "listen": listen.to_string(),
            "forward": a.forward.to_string(),
            "seed": a.seed,
            "duration_s": elapsed.as_secs_f64(),
            "uplink": stats.uplink,
            "downlink": stats.downlink,
        });
        match serde_json::to_string_pretty(&json) {
            Ok(text) => out(&format!("{text}\n")),
            Err(e) => {
                eprintln!("rotorlink: cannot write the statistics as JSON: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        out(&format!(
            "proxy {listen} -> {} for {}, seed {}\nradio (each way): {}\n\n{}",
            a.forward,
            show_duration(elapsed),
            a.seed,
            args::describe_radio(&args::uplink(config.clone(), &a.radio), &config, true),
            table(&stats)
        ));
    }
    ExitCode::SUCCESS
}

/// Write to standard output; a closed pipe is not an error worth a panic.
fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
}

/// Both directions, one row each.
fn table(s: &ProxyStats) -> String {
    let mut t = format!(
        "{:<10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}\n",
        "direction",
        "received",
        "lost",
        "dropped",
        "duplicated",
        "corrupted",
        "delivered",
        "forwarded",
        "in flight"
    );
    let row = |name: &str, d: &DirectionStats| {
        let c = &d.channel;
        format!(
            "{name:<10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}\n",
            d.received,
            c.lost,
            c.dropped_queue + c.dropped_mtu,
            c.duplicated,
            c.corrupted,
            c.delivered,
            d.forwarded,
            d.in_flight
        )
    };
    t.push_str(&row("uplink", &s.uplink));
    t.push_str(&row("downlink", &s.downlink));
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Proxy {
        #[command(flatten)]
        args: ProxyArgs,
    }

    fn parse(flags: &[&str]) -> Result<ProxyArgs, clap::Error> {
        let argv = [
            "proxy",
            "--listen",
            "127.0.0.1:0",
            "--forward",
            "127.0.0.1:9",
        ]
        .into_iter()
        .chain(flags.iter().copied());
        Proxy::try_parse_from(argv).map(|p| p.args)
    }

    #[test]
    fn the_radio_starts_perfect() {
        let a = parse(&[]).unwrap();
        let c = radio(&a).unwrap();
        assert_eq!(c.delay, Duration::ZERO);
        assert_eq!(
            (c.loss, c.duplicate, c.corrupt, c.reorder),
            (0.0, 0.0, 0.0, 0.0)
        );
        assert_eq!((c.jitter, c.rate_bps, c.mtu), (Duration::ZERO, None, None));
        assert_eq!((a.seed, a.duration, a.json), (1, None, false));
    }

    #[test]
    fn flags_add_impairments() {
        let a = parse(&[
            "--loss",
            "5%",
            "--delay",
            "10ms",
            "--jitter",
            "1ms",
            "--duration",
            "3s",
            "--seed",
            "4",
            "--json",
        ])
        .unwrap();
        let c = radio(&a).unwrap();
        assert_eq!((c.loss, c.delay), (0.05, Duration::from_millis(10)));
        assert_eq!(c.jitter, Duration::from_millis(1));
        assert_eq!(
            (a.seed, a.duration, a.json),
            (4, Some(Duration::from_secs(3)), true)
        );
        let a = parse(&["--loss", "60%", "--burst", "1"]).unwrap();
        assert_eq!(radio(&a).unwrap_err().flag, "--burst");
    }

    #[test]
    fn bad_values_are_refused_by_the_parser() {
        for flags in [
            &["--loss", "150%"][..],
            &["--duration", "0s"],
            &["--delay", "soon"],
        ] {
            let e = parse(flags).unwrap_err();
            assert_eq!(
                e.kind(),
                clap::error::ErrorKind::ValueValidation,
                "{flags:?}"
            );
        }
        let e = Proxy::try_parse_from(["proxy", "--listen", "localhost", "--forward", "x:1"])
            .unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation);
        assert!(e.to_string().contains("--listen"), "{e}");
        let e = Proxy::try_parse_from(["proxy", "--listen", "127.0.0.1:0"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::MissingRequiredArgument);
    }

    #[test]
    fn the_help_tells_the_proxy_defaults() {
        use clap::CommandFactory;
        let help = Proxy::command().render_long_help().to_string();
        assert!(help.contains("e.g. 10ms [default: 0]"), "{help}");
        assert!(!help.contains("[default: 5ms]"), "{help}");
        assert!(help.contains("[default: no limit]"), "{help}");
    }
}
