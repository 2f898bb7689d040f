//! Issue 29's scale runs, printed, not asserted: how many connections one
//! process holds and what each costs, how fast a very large room gets its
//! messages, three edge sidecars sharing one room through Redis, and how
//! the cost of a read grows with the data behind it.
//!
//! The server is the release default run (`target/release/chatroom`), or
//! for the edge part the release host and sidecar binaries, each on a
//! fresh state directory; the clients are plain Socket.IO-over-websocket
//! connections made by hand (a few KiB each on the client side), bound to
//! several loopback source addresses so that more than one address's
//! worth of ports is available, with the open-file limit raised for this
//! process and the servers it starts (as far as the machine lets it: a
//! process without `CAP_SYS_RESOURCE` cannot pass its hard limit, and a
//! part that does not fit is cut down to fit, saying so). The edge part's
//! members are held by child processes of this binary (member holders),
//! so its three sidecars' connections are bounded only by each sidecar's
//! own limit. The clients share the machine.
//!
//! Run: `cargo bench -p chatroom-tests --bench scale`. Sizes default to
//! issue 29's and can be lowered for a quick look:
//!
//! | variable | default | part |
//! |---|---|---|
//! | `SCALE_PARTS` | `idle,room,edge,data` | which parts run |
//! | `SCALE_IDLE` | 100000 | idle connections held by one process |
//! | `SCALE_MEMBERS` | 10000 | members of the large room |
//! | `SCALE_RATE`, `SCALE_SECONDS` | 10, 10 | its messages per second, for how long |
//! | `SCALE_EDGE` | 20000 | connections on each of three edge sidecars |
//! | `SCALE_MESSAGES` | 1000000 | messages in the largest room |
//! | `SCALE_REPLAY` | 100000 | changes replayed by one `since` |
//! | `SCALE_ROOMS` | 1000 | rooms a user has a read position in |

use std::io::{BufRead as _, BufReader, BufWriter, Write as _};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use chatroom_core::{Database, MessageDraft, RoomName};
use chatroom_tests::edge::{EdgeRest, TOKEN};
use chatroom_tests::http::{create_room, room_users, wait_until_up};
use chatroom_tests::process::SidecarProcess;
use chatroom_tests::redis::RedisServer;
use chatroom_tests::release::{
    default_run_binary, machine, rss_kib, start_default_run, start_default_run_in,
};
use futures_util::{SinkExt, StreamExt, stream};
use reqwest::Client;
use serde_json::{Value, json};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::{WebSocketStream, client_async};

/// Connections opened at once while connecting many.
const CONNECTING_AT_ONCE: usize = 256;

/// Connections per loopback source address: few, as binding a source
/// address to port 0 searches its bound ports, slower as they grow.
const PER_SOURCE: usize = 2_000;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn part_wanted(name: &str) -> bool {
    std::env::var("SCALE_PARTS").map_or(true, |parts| parts.split(',').any(|p| p.trim() == name))
}

/// Raises this process's open-file limit (inherited by the servers it
/// starts); as root the hard limit too.
fn raise_file_limit(wanted: u64) -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local rlimit.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        let raised = libc::rlimit {
            rlim_cur: wanted,
            rlim_max: wanted.max(limit.rlim_max),
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
    }
    println!("open-file limit: {}", limit.rlim_cur);
    limit.rlim_cur
}

fn percentile_ms(samples: &mut [Duration], p: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort();
    samples[((samples.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1e3
}

/// One Socket.IO connection over a websocket, spoken by hand.
struct Conn {
    ws: WebSocketStream<TcpStream>,
}

impl Conn {
    /// Connects to `server` from `source`, through the namespace connect.
    async fn open(server: SocketAddr, source: Ipv4Addr) -> anyhow::Result<Self> {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(source.into(), 0))?;
        let stream = socket.connect(server).await?;
        let url = format!("ws://{server}/socket.io/?EIO=4&transport=websocket");
        let (ws, _) = client_async(url, stream).await?;
        let mut conn = Conn { ws };
        let open = conn.next_text().await?;
        anyhow::ensure!(open.starts_with('0'), "no engine.io open: {open}");
        conn.send("40").await?;
        let connected = conn.next_text().await?;
        anyhow::ensure!(connected.starts_with("40"), "no namespace: {connected}");
        Ok(conn)
    }

    async fn send(&mut self, text: &str) -> anyhow::Result<()> {
        self.ws.send(Frame::text(text.to_owned())).await?;
        Ok(())
    }

    /// The next text frame, answering the server's pings on the way.
    async fn next_text(&mut self) -> anyhow::Result<String> {
        loop {
            match self.ws.next().await.context("closed")?? {
                Frame::Text(text) if text.as_str() == "2" => self.send("3").await?,
                Frame::Text(text) => return Ok(text.as_str().to_owned()),
                Frame::Close(_) => anyhow::bail!("closed by the server"),
                _ => {}
            }
        }
    }

    /// Joins `room` as `username` (optionally `since`), and waits for the
    /// ack, calling `on_event` with every other frame on the way.
    async fn join(
        &mut self,
        room: i64,
        username: &str,
        since: Option<i64>,
        mut on_event: impl FnMut(&str),
    ) -> anyhow::Result<Value> {
        let mut payload = json!({"room_id": room, "username": username});
        if let Some(since) = since {
            payload["since"] = since.into();
        }
        self.send(&format!("421[\"join_room\",{payload}]")).await?;
        loop {
            let text = self.next_text().await?;
            if let Some(ack) = text.strip_prefix("431") {
                let mut ack: Value = serde_json::from_str(ack)?;
                return Ok(ack[0].take());
            }
            on_event(&text);
        }
    }

    /// Reads until the connection closes, answering pings.
    async fn hold(mut self, closed: Arc<AtomicUsize>) {
        while self.next_text().await.is_ok() {}
        closed.fetch_add(1, Ordering::Relaxed);
    }
}

/// The source address of the `i`th connection: 127.0.0.2, 127.0.0.3, ...
fn source(i: usize) -> Ipv4Addr {
    let n = u32::try_from(2 + i / PER_SOURCE).unwrap_or(u32::MAX);
    Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 0, 0, 0)) + n)
}

/// Opens `n` connections (numbered from `first`), some at once; the ones
/// that opened, and how many failed.
async fn connect_many(server: SocketAddr, first: usize, n: usize) -> (Vec<Conn>, usize) {
    let results: Vec<_> = stream::iter(first..first + n)
        .map(|i| Conn::open(server, source(i)))
        .buffer_unordered(CONNECTING_AT_ONCE)
        .collect()
        .await;
    let failed = results.iter().filter(|r| r.is_err()).count();
    if let Some(Err(e)) = results.iter().find(|r| r.is_err()) {
        println!("  first failed connection: {e:#}");
    }
    (results.into_iter().flatten().collect(), failed)
}

/// Idle connections held by one default run: resident memory per
/// connection, measured after a ping round so each has had traffic.
async fn idle(binary: &Path, cache: &Path, n: usize) {
    // A first start compiles the component into the cache. Measured on
    // that start, the compiler's freed memory sits in the baseline and new
    // connections reuse it unseen (7.9 KiB a connection then, 11.5 from a
    // clean baseline, docs/benchmarks.md).
    let compiling = start_default_run(binary, cache, &[]);
    wait_until_up(&compiling.base()).await;
    drop(compiling);
    let limit = (n + 1000).to_string();
    let server = start_default_run(binary, cache, &["--max-connections", &limit]);
    wait_until_up(&server.base()).await;
    // A first hundred, so what the first connections allocate once
    // (pools, tables, the runtime's buffers) is in the baseline.
    let (warm, _) = connect_many(server.addr, 0, 100).await;
    // Start-up's compile buffers are given back within seconds.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let before = rss_kib(server.pid());
    let started = Instant::now();
    let (conns, failed) = connect_many(server.addr, 100, n).await;
    let took = started.elapsed();
    let held = conns.len();
    let closed = Arc::new(AtomicUsize::new(0));
    let holders: Vec<_> = conns
        .into_iter()
        .chain(warm)
        .map(|c| tokio::spawn(c.hold(closed.clone())))
        .collect();
    let after = rss_kib(server.pid());
    println!(
        "idle: {held} connections opened in {:.1} s ({:.0}/s), {failed} failed; \
         server RSS {:.0} -> {:.0} MiB, {:.2} KiB per connection",
        took.as_secs_f64(),
        held as f64 / took.as_secs_f64(),
        before / 1024.0,
        after / 1024.0,
        (after - before) / held.max(1) as f64
    );
    // Socket.IO pings every 25 s: after one round every connection has
    // sent and received something.
    let hold = Duration::from_secs(env_usize("SCALE_HOLD", 30) as u64);
    tokio::time::sleep(hold).await;
    let after_ping = rss_kib(server.pid());
    println!(
        "idle: after {hold:?} (a ping round): {} of {held} closed; server RSS {:.0} MiB, \
         {:.2} KiB per connection",
        closed.load(Ordering::Relaxed),
        after_ping / 1024.0,
        (after_ping - before) / held.max(1) as f64
    );
    drop(server);
    for h in holders {
        h.abort();
    }
}

/// Microseconds since the Unix epoch: the clock every process on the
/// machine shares, so a post's time can be read by members held in
/// other processes.
fn wall_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// A member's reader: the delivery latency of every `new_message` (its
/// text is `t=<microseconds since the epoch>`), until the one saying
/// `fence`.
async fn member_latencies(mut conn: Conn) -> Vec<Duration> {
    let mut latencies = Vec::new();
    while let Ok(text) = conn.next_text().await {
        if !text.starts_with("42[\"new_message\"") {
            continue;
        }
        if text.contains("\"fence\"") {
            break;
        }
        let Some(at) = text.split("t=").nth(1) else {
            continue;
        };
        let sent: u64 = at
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .unwrap_or(0);
        latencies.push(Duration::from_micros(wall_micros().saturating_sub(sent)));
    }
    latencies
}

/// Joins `n` members (from `first`) to `room` on `server`; the joined
/// connections. Every join's `user_joined` goes to the whole room, so
/// the set-up is itself a measure: n²/2 deliveries.
async fn join_many(server: SocketAddr, room: i64, first: usize, n: usize) -> Vec<Conn> {
    let (conns, failed) = connect_many(server, first, n).await;
    if failed > 0 {
        println!("  {failed} of {n} connections failed");
    }
    let joined: Vec<_> = stream::iter(conns.into_iter().enumerate())
        .map(|(i, mut conn)| async move {
            let ack = conn
                .join(room, &format!("m{}", first + i), None, |_| {})
                .await;
            ack.ok().filter(|a| a["ok"] == true).map(|_| conn)
        })
        .buffer_unordered(CONNECTING_AT_ONCE)
        .collect()
        .await;
    joined.into_iter().flatten().collect()
}

/// `rate` REST posts a second for `seconds` to `room` through `rest`,
/// each saying when it was sent, then the fence.
async fn post_at_rate(rest: &str, room: i64, rate: usize, seconds: usize) {
    let http = Client::new();
    let url = format!("{rest}/chatrooms/{room}/messages");
    // One not timed (members skip a text without `t=`): the first post
    // through a fresh path warms it.
    let warm = json!({"sender": "poster", "message": "warm-up"});
    let _ = http.post(&url).json(&warm).send().await;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    for _ in 0..rate * seconds {
        tick.tick().await;
        let text = format!("t={}", wall_micros());
        let body = json!({"sender": "poster", "message": text});
        if let Err(e) = http.post(&url).json(&body).send().await {
            println!("  a post failed: {e}");
        }
    }
    let fence = json!({"sender": "poster", "message": "fence"});
    let _ = http.post(&url).json(&fence).send().await;
}

/// Collects every member's latencies.
async fn collect(readers: Vec<tokio::task::JoinHandle<Vec<Duration>>>) -> Vec<Duration> {
    let mut all = Vec::new();
    for r in readers {
        all.extend(r.await.unwrap_or_default());
    }
    all
}

/// Prints the deliveries' count and latency percentiles.
fn report_deliveries(label: &str, members: usize, mut all: Vec<Duration>) {
    println!(
        "{label}: {} deliveries to {members} members, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        all.len(),
        percentile_ms(&mut all, 0.5),
        percentile_ms(&mut all, 0.99),
        percentile_ms(&mut all, 1.0),
    );
}

/// One room of `members` on one default run, `rate` messages a second.
async fn large_room(binary: &Path, cache: &Path, members: usize, rate: usize, seconds: usize) {
    let limit = (members + 1000).to_string();
    let queue = (members * 2).to_string();
    // The join storm (every join announced to every member) must not
    // count as members falling behind: a deep outgoing queue.
    let server = start_default_run(
        binary,
        cache,
        &[
            "--max-connections",
            &limit,
            "--max-buffered-packets",
            &queue,
        ],
    );
    let base = server.base();
    wait_until_up(&base).await;
    let room = create_room(&base, "large").await;
    let started = Instant::now();
    let conns = join_many(server.addr, room, 0, members).await;
    println!(
        "large room: {} of {members} members joined in {:.1} s (each join announced to the room); \
         server RSS {:.0} MiB",
        conns.len(),
        started.elapsed().as_secs_f64(),
        rss_kib(server.pid()) / 1024.0
    );
    let members = conns.len();
    let readers: Vec<_> = conns
        .into_iter()
        .map(|c| tokio::spawn(member_latencies(c)))
        .collect();
    post_at_rate(&base, room, rate, seconds).await;
    report_deliveries(
        &format!("large room, {rate} messages/s for {seconds} s, REST post to each member"),
        members,
        collect(readers).await,
    );
}

/// Set, this binary is a member holder instead of the bench: a child
/// process that joins `n` members (numbered from `first`) to `room` on
/// the server at `addr` (the value is `addr room first n`), says
/// `joined <k>` on stdout, and once every member has the fence writes
/// their delivery latencies, one line of microseconds each. Members held
/// in several processes are not bounded by one process's open-file limit.
const HOLDER: &str = "SCALE_MEMBER_HOLDER";

/// A member holder's whole run (see [`HOLDER`]).
fn hold_members(spec: &str) {
    let fields: Vec<&str> = spec.split(' ').collect();
    let [addr, room, first, n] = fields[..] else {
        panic!("{HOLDER} is `addr room first n`, not {spec:?}");
    };
    let addr: SocketAddr = addr.parse().expect("an address");
    let room: i64 = room.parse().expect("a room id");
    let (first, n): (usize, usize) = (
        first.parse().expect("a first number"),
        n.parse().expect("a count"),
    );
    raise_file_limit(1 << 20);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let latencies = runtime.block_on(async {
        let conns = join_many(addr, room, first, n).await;
        println!("joined {}", conns.len());
        let readers = conns
            .into_iter()
            .map(|c| tokio::spawn(member_latencies(c)))
            .collect();
        collect(readers).await
    });
    let mut out = BufWriter::new(std::io::stdout().lock());
    for latency in latencies {
        writeln!(out, "{}", latency.as_micros()).expect("stdout");
    }
}

/// A member holder started by the bench (see [`HOLDER`]); killed if
/// dropped before its report is read.
struct MemberHolder {
    child: Child,
    report: BufReader<ChildStdout>,
}

impl MemberHolder {
    /// Starts one and waits until its members have joined; how many did.
    /// Whatever else it prints before that is passed on.
    fn start(server: SocketAddr, room: i64, first: usize, n: usize) -> (Self, usize) {
        let mut child = Command::new(std::env::current_exe().expect("this bench's path"))
            .env(HOLDER, format!("{server} {room} {first} {n}"))
            .stdout(Stdio::piped())
            .spawn()
            .expect("a member holder");
        let report = BufReader::new(child.stdout.take().expect("its stdout"));
        let mut holder = MemberHolder { child, report };
        let mut line = String::new();
        loop {
            line.clear();
            if holder.report.read_line(&mut line).unwrap_or(0) == 0 {
                return (holder, 0);
            }
            match line.trim().strip_prefix("joined ") {
                Some(joined) => return (holder, joined.parse().unwrap_or(0)),
                None => print!("  holder: {line}"),
            }
        }
    }

    /// Its members' latencies, read once they all have the fence.
    fn latencies(mut self) -> Vec<Duration> {
        (&mut self.report)
            .lines()
            .map_while(Result::ok)
            .filter_map(|line| line.parse().ok())
            .map(Duration::from_micros)
            .collect()
    }
}

impl Drop for MemberHolder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Three edge sidecars with Redis in front of one host, `per_sidecar`
/// members of one room on each, held by member holders of at most
/// `per_process` members; posts through the host reach all three.
async fn edge(per_sidecar: usize, per_process: usize, rate: usize, seconds: usize) {
    let redis = RedisServer::start();
    let host = Path::new(env!("CARGO_BIN_EXE_host-process"));
    let rest = EdgeRest::host(host, Some(&redis)).await;
    let bin = Path::new(env!("CARGO_BIN_EXE_sidecar-process"));
    let limit = (per_sidecar + 1000).to_string();
    let queue = (per_sidecar * 2).to_string();
    let mut sidecars = Vec::new();
    for node in ["a", "b", "c"] {
        let flags = [
            "--node-id",
            node,
            "--redis",
            redis.url.as_str(),
            "--max-connections",
            &limit,
            "--max-buffered-packets",
            &queue,
        ];
        sidecars.push(SidecarProcess::start_edge(bin, &rest.url, TOKEN, &flags).await);
    }
    let room = create_room(&rest.url, "edge large").await;
    let started = Instant::now();
    let (mut holders, mut joined, mut first) = (Vec::new(), 0, 0);
    for sidecar in &sidecars {
        let parts = per_sidecar.div_ceil(per_process.max(1));
        for part in 0..parts {
            let n = per_sidecar / parts + usize::from(part < per_sidecar % parts);
            let addr = sidecar.addr;
            let (holder, k) =
                tokio::task::spawn_blocking(move || MemberHolder::start(addr, room, first, n))
                    .await
                    .expect("a member holder started");
            holders.push(holder);
            joined += k;
            first += n;
        }
    }
    let rss: f64 = sidecars.iter().map(|s| rss_kib(s.pid())).sum::<f64>() / 3.0;
    let files: Vec<usize> = sidecars.iter().map(|s| open_files(s.pid())).collect();
    println!(
        "edge: {joined} of {} members joined on three sidecars in {:.1} s, held by {} processes; \
         sidecar RSS {:.0} MiB each, open files {files:?}",
        3 * per_sidecar,
        started.elapsed().as_secs_f64(),
        holders.len(),
        rss / 1024.0
    );
    post_at_rate(&rest.url, room, rate, seconds).await;
    let all = tokio::task::spawn_blocking(move || {
        holders
            .into_iter()
            .flat_map(MemberHolder::latencies)
            .collect()
    })
    .await
    .expect("the holders' reports");
    report_deliveries(
        &format!(
            "edge, {rate} messages/s for {seconds} s, post on the host to every sidecar's members"
        ),
        joined,
        all,
    );
    // The holders have exited, so every member's connection has closed:
    // how long until the sidecars have unlisted them all.
    let closed = Instant::now();
    let listed = loop {
        let listed = room_users(&rest.url, room).await["user_count"]
            .as_u64()
            .unwrap_or(u64::MAX);
        if listed == 0 || closed.elapsed() > Duration::from_secs(60) {
            break listed;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!(
        "edge: {listed} of {joined} members still listed {:.1} s after their processes ended",
        closed.elapsed().as_secs_f64()
    );
}

/// How many files `pid` has open.
fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

/// Seeds `sizes` rooms (one per size, that many messages each) straight
/// into the database file, in transactions of 10,000; their ids.
fn seed_rooms(db: &impl Database, prefix: &str, sizes: &[usize]) -> Vec<i64> {
    let mut ids = Vec::new();
    for (k, size) in sizes.iter().enumerate() {
        let name = RoomName::parse(&format!("{prefix}-{k}")).expect("a room name");
        let room = chatroom_core::create_room(db, &name).expect("room created");
        let draft =
            MessageDraft::from_fields(Some("seeder"), Some("a message of about forty characters"))
                .expect("a draft");
        let mut left = *size;
        while left > 0 {
            let batch: Vec<_> = (0..left.min(10_000))
                .map(|_| (room.id, draft.clone()))
                .collect();
            chatroom_core::insert_messages(db, &batch, 0).expect("seeded");
            left -= batch.len();
        }
        ids.push(room.id);
    }
    ids
}

/// p50 of `n` sequential GETs of `path`, in ms.
async fn get_p50(http: &Client, base: &str, path: &str, n: usize) -> f64 {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        let res = http.get(format!("{base}{path}")).send().await.expect("GET");
        assert!(res.status().is_success(), "{path}: {}", res.status());
        res.bytes().await.expect("body");
        samples.push(started.elapsed());
    }
    percentile_ms(&mut samples, 0.5)
}

/// A `join_room` with `since`: the time to its ack (every replayed change
/// arrives before it) and how many changes came.
async fn replay(addr: SocketAddr, room: i64, since: i64) -> (Duration, usize) {
    let mut conn = Conn::open(addr, source(0)).await.expect("connect");
    let mut changes = 0;
    let started = Instant::now();
    let ack = conn
        .join(room, "replayer", Some(since), |text| {
            if text.starts_with("42[\"new_message\"") {
                changes += 1;
            }
        })
        .await
        .expect("join with since");
    let took = started.elapsed();
    assert_eq!(ack["replayed"].as_u64(), Some(changes as u64), "{ack}");
    (took, changes)
}

/// How reads grow with the data: the newest page of rooms of growing
/// size, `since` replays from rooms of growing size, and unread counts
/// over growing numbers of rooms.
async fn data(binary: &Path, cache: &Path, largest: usize, replayed: usize, rooms: usize) {
    // Seed the file before the server opens it.
    let state = tempfile::tempdir().expect("state dir");
    let file = state.path().join("sqlite_db.db");
    let db = chatroom_dbfile::open_file(&file).expect("database");
    let started = Instant::now();
    let sizes: Vec<usize> = [1_000, 10_000, 100_000, 1_000_000]
        .into_iter()
        .filter(|s| *s < largest)
        .chain([largest])
        .collect();
    let by_size = seed_rooms(&db, "history", &sizes);
    // `rooms` rooms of 100 messages each, for the unread counts.
    let small = seed_rooms(&db, "unread", &vec![100; rooms]);
    drop(db);
    println!(
        "data: seeded {} messages in {:.1} s",
        sizes.iter().sum::<usize>() + 100 * rooms,
        started.elapsed().as_secs_f64()
    );
    let server = start_default_run_in(binary, cache, state, &[]);
    let base = server.base();
    wait_until_up(&base).await;
    let http = Client::new();
    for (size, room) in sizes.iter().zip(&by_size) {
        let path = format!("/chatrooms/{room}/messages?limit=100");
        let p50 = get_p50(&http, &base, &path, 200).await;
        println!("data: newest page (100) of a room of {size:>9} messages: p50 {p50:.3} ms");
    }
    // The newest message id of the largest room is the seq to count back from.
    let (Some(&largest_room), Some(&first_small)) = (by_size.last(), small.first()) else {
        return;
    };
    let newest = newest_id(&http, &base, largest_room).await;
    // A first replay, not counted: the connection and the statements warm.
    replay(server.addr, largest_room, newest - 10).await;
    for back in [1_000, replayed] {
        let (took, n) = replay(server.addr, largest_room, newest - back as i64).await;
        println!(
            "data: since replay of {n:>7} changes from a room of {largest} messages: {:.1} ms, \
             {:.2} µs per change",
            took.as_secs_f64() * 1e3,
            took.as_secs_f64() * 1e6 / n.max(1) as f64
        );
    }
    let small_newest = newest_id(&http, &base, *by_size.first().unwrap_or(&first_small)).await;
    let (took, n) = replay(server.addr, by_size[0], small_newest - 100).await;
    println!(
        "data: since replay of {n:>7} changes from a room of {} messages: {:.1} ms",
        sizes[0],
        took.as_secs_f64() * 1e3
    );
    // Read positions: 10 messages unread in each room.
    for (k, room) in small.iter().enumerate() {
        let newest = newest_id(&http, &base, *room).await;
        let res = http
            .put(format!("{base}/chatrooms/{room}/read"))
            .json(&json!({"username": "reader", "message_id": newest - 10}))
            .send()
            .await
            .expect("PUT read");
        assert!(res.status().is_success(), "{}", res.status());
        let count = k + 1;
        if count == 10 || count == 100 || count == rooms {
            let p50 = get_p50(&http, &base, "/users/reader/unread", 100).await;
            println!(
                "data: unread counts of a user in {count:>5} rooms (10 unread in each): p50 {p50:.3} ms"
            );
        }
    }
}

/// The newest message id in `room`.
async fn newest_id(http: &Client, base: &str, room: i64) -> i64 {
    let page: Value = http
        .get(format!("{base}/chatrooms/{room}/messages?limit=1"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("a page");
    page.as_array()
        .and_then(|p| p.last())
        .and_then(|m| m["id"].as_i64())
        .expect("a message")
}

/// Descriptors a server keeps beside its clients' connections: its
/// listeners, the database, Redis, its runtime, and for an edge sidecar
/// its connections to the host, of which a join storm leaves a few
/// hundred open (300–380 after 2,000 joins, 256 at a time); what its
/// clients may use of the open-file limit is the rest.
const SERVER_OWN_FILES: usize = 1000;

/// Descriptors kept free of connections in a process of clients.
const CLIENT_OWN_FILES: usize = 1000;

fn main() {
    if let Ok(spec) = std::env::var(HOLDER) {
        hold_members(&spec);
        return;
    }
    let files = usize::try_from(raise_file_limit(1 << 20)).unwrap_or(usize::MAX);
    // Where this process holds the clients, it needs one descriptor per
    // connection as the server does: both need room under the limit.
    let fit = |wanted: usize, what: &str| {
        let most = files.saturating_sub(CLIENT_OWN_FILES);
        if wanted > most {
            println!("{what}: {wanted} connections do not fit the open-file limit; {most} instead");
        }
        wanted.min(most)
    };
    let binary = default_run_binary();
    let cache = tempfile::tempdir().expect("cache dir");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!("# scale: {}", machine());
    runtime.block_on(async {
        if part_wanted("idle") {
            let n = fit(env_usize("SCALE_IDLE", 100_000), "idle");
            idle(&binary, cache.path(), n).await;
        }
        let rate = env_usize("SCALE_RATE", 10);
        let seconds = env_usize("SCALE_SECONDS", 10);
        if part_wanted("room") {
            let members = fit(env_usize("SCALE_MEMBERS", 10_000), "large room");
            large_room(&binary, cache.path(), members, rate, seconds).await;
        }
        if part_wanted("edge") {
            // The members are held by child processes; only each
            // sidecar's own limit bounds its connections.
            let wanted = env_usize("SCALE_EDGE", 20_000);
            let per_sidecar = wanted.min(files.saturating_sub(SERVER_OWN_FILES));
            if per_sidecar < wanted {
                println!(
                    "edge: {wanted} connections a sidecar do not fit the open-file limit; \
                     {per_sidecar} instead"
                );
            }
            let per_process = files.saturating_sub(CLIENT_OWN_FILES);
            edge(per_sidecar, per_process, rate, seconds).await;
        }
        if part_wanted("data") {
            data(
                &binary,
                cache.path(),
                env_usize("SCALE_MESSAGES", 1_000_000),
                env_usize("SCALE_REPLAY", 100_000),
                env_usize("SCALE_ROOMS", 1_000),
            )
            .await;
        }
    });
}
