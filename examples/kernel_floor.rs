//! The kernel floor under a WebSocket delivery, for docs/benchmarks.md: one
//! thread sends the same frame to N connected loopback sockets in a tight
//! loop, one `send` per socket per round, and prints the CPU time per send
//! — what no gateway can go below on this machine, measured the way
//! feedgate's CPU per delivery is (CPU time, loopback delivery included:
//! the kernel hands a loopback segment to the receiver in the sender's
//! context).
//!
//! ```text
//! cargo run --release --example kernel_floor -- [sockets=5000] [rounds=100] [frame=181]
//! ```
//!
//! Receivers never read: `rounds × frame` bytes stay within a socket's
//! default receive buffer (the program refuses more), so nothing blocks and
//! no reader's CPU is counted.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Instant;

/// Largest `rounds × frame` per socket: under Linux's default
/// `tcp_rmem` (128 KiB) with room to spare.
const MAX_PER_SOCKET: usize = 64 * 1024;

fn arg(args: &[String], i: usize, default: usize) -> Result<usize, String> {
    args.get(i).map_or(Ok(default), |a| {
        a.parse()
            .map_err(|_| format!("argument {i}: {a:?} is not a count"))
    })
}

/// CPU time this thread has run, in nanoseconds (`/proc/thread-self/schedstat`).
fn thread_cpu_ns() -> Result<u64, String> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat")
        .map_err(|e| format!("/proc/thread-self/schedstat: {e} (Linux only)"))?;
    s.split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("/proc/thread-self/schedstat: unexpected {s:?}"))
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let sockets = arg(&args, 0, 5_000)?;
    let rounds = arg(&args, 1, 100)?;
    let frame_len = arg(&args, 2, 181)?;
    let per_socket = rounds
        .checked_mul(frame_len)
        .ok_or("rounds × frame overflows")?;
    if sockets == 0 || rounds == 0 || frame_len == 0 || per_socket > MAX_PER_SOCKET {
        return Err(format!(
            "need sockets, rounds, frame ≥ 1 and rounds × frame ≤ {MAX_PER_SOCKET} bytes"
        ));
    }
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let mut senders = Vec::with_capacity(sockets);
    let mut receivers = Vec::with_capacity(sockets);
    for i in 0..sockets {
        let client = TcpStream::connect(addr).map_err(|e| format!("socket {i}: {e}"))?;
        let (server, _) = listener.accept().map_err(|e| format!("accept {i}: {e}"))?;
        server.set_nodelay(true).map_err(|e| e.to_string())?;
        senders.push(server);
        receivers.push(client);
        if (i + 1) % 2000 == 0 {
            eprintln!("kernel_floor: {} of {sockets} connected", i + 1);
        }
    }
    // A WebSocket text frame: 2-byte header, then payload.
    let mut frame = vec![b'x'; frame_len];
    frame[0] = 0x81;
    frame[1] = u8::try_from(frame_len.saturating_sub(2).min(125)).unwrap_or(125);
    let wall = Instant::now();
    let cpu0 = thread_cpu_ns()?;
    for _ in 0..rounds {
        for s in &mut senders {
            let n = s.write(&frame).map_err(|e| e.to_string())?;
            if n != frame.len() {
                return Err(format!("a short send ({n} of {frame_len}): lower rounds"));
            }
        }
    }
    let cpu = thread_cpu_ns()?.saturating_sub(cpu0);
    let wall = wall.elapsed();
    let sends = (sockets as u64).saturating_mul(rounds as u64);
    // The receivers got every byte (a check, not a measurement).
    let mut buf = vec![0u8; per_socket];
    if let Some(r) = receivers.first_mut() {
        r.read_exact(&mut buf).map_err(|e| e.to_string())?;
    }
    println!(
        "kernel floor: {sends} sends of {frame_len} B to {sockets} loopback sockets, {rounds} rounds: \
         {:.2} µs CPU per send ({:.3} s CPU, {:.3} s wall)",
        cpu as f64 / 1000.0 / sends as f64,
        cpu as f64 / 1e9,
        wall.as_secs_f64()
    );
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("kernel_floor: {e}");
        std::process::exit(2);
    }
}
