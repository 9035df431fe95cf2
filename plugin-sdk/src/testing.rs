//! Native unit tests for plugins: run a source, transform or sink in-process, without wasm,
//! against a recording host.
//!
//! ```
//! use autoflow_plugin_sdk::{testing::TestHost, Record};
//! # use autoflow_plugin_sdk::*;
//! # struct Upper;
//! # impl Transform for Upper {
//! #     type Config = serde_json::Value;
//! #     fn metadata() -> Metadata { Metadata::new("upper", "0.1.0", "upper-cases") }
//! #     fn open(_: Self::Config) -> Result<Self> { Ok(Upper) }
//! #     fn process(&mut self, r: Record, out: &mut Output) -> Result<()> {
//! #         out.emit(Record::new(r.value.to_ascii_uppercase())); Ok(())
//! #     }
//! # }
//! let out = TestHost::new().transform::<Upper>("{}", vec![Record::new("a")]).unwrap();
//! assert_eq!(out.records[0].value, b"A");
//! ```
use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};

use crate::http::{HttpError, Response};
use crate::messaging::{Message, Outgoing};
use crate::sql::{Dialect, Rows, Value};
use crate::{Batch, Error, Level, Processed, Record, Sink, Source, Transform, parse_config};

/// A host for native tests: it records log lines and counters, keeps state in memory and
/// serves the secrets it was given; with [`TestHost::with_sql`], [`TestHost::with_messaging`]
/// and [`TestHost::with_http`], scripted databases, queues and web servers answer the plugin's
/// [`crate::sql`], [`crate::messaging`] and [`crate::http`] calls (without them, those calls
/// fail as unavailable).
#[derive(Debug, Default, Clone)]
pub struct TestHost {
    /// Log lines written by the plugin, in order.
    pub logs: Vec<(Level, String)>,
    /// Counters incremented by the plugin.
    pub counters: BTreeMap<String, u64>,
    /// The step's state.
    pub state: BTreeMap<String, Vec<u8>>,
    /// Secrets granted to the step.
    pub secrets: BTreeMap<String, String>,
    /// The scripted database, if any.
    pub sql: Option<FakeSql>,
    /// The scripted message service, if any.
    pub messaging: Option<FakeMessaging>,
    /// The scripted web server, if any.
    pub http: Option<FakeHttp>,
}

/// One call a plugin made to [`crate::sql`], as a [`FakeSql`] recorded it.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlCall {
    /// `dialect(connection)`.
    Dialect {
        /// The connection named.
        connection: String,
    },
    /// `query`, alone (`transaction: None`) or in the transaction of that number.
    Query {
        /// The connection named.
        connection: String,
        /// The statement.
        statement: String,
        /// Its parameters.
        params: Vec<Value>,
        /// The transaction it ran in.
        transaction: Option<u32>,
    },
    /// `execute`, alone or in a transaction.
    Execute {
        /// The connection named.
        connection: String,
        /// The statement.
        statement: String,
        /// Its parameters.
        params: Vec<Value>,
        /// The transaction it ran in.
        transaction: Option<u32>,
    },
    /// `begin`: transaction number `transaction` (from 1).
    Begin {
        /// The connection named.
        connection: String,
        /// The transaction's number.
        transaction: u32,
    },
    /// A commit of that transaction.
    Commit {
        /// The transaction's number.
        transaction: u32,
    },
    /// A rollback of that transaction, asked for or by dropping it.
    Rollback {
        /// The transaction's number.
        transaction: u32,
    },
}

/// A scripted database for native tests: every connection is of `dialect`, queries answer
/// `results` in order (no row once they run out), executes answer `affected` in order (0 once
/// they run out), and every call lands in `calls`.
#[derive(Debug, Clone)]
pub struct FakeSql {
    /// The dialect of every connection.
    pub dialect: Dialect,
    /// What the next queries return, in order.
    pub results: VecDeque<Result<Rows, Error>>,
    /// What the next executes return, in order.
    pub affected: VecDeque<Result<u64, Error>>,
    /// The calls made, in order.
    pub calls: Vec<SqlCall>,
    /// Transactions begun so far.
    pub transactions: u32,
}

impl FakeSql {
    /// A database of `dialect` with nothing scripted.
    pub fn new(dialect: Dialect) -> Self {
        Self {
            dialect,
            results: VecDeque::new(),
            affected: VecDeque::new(),
            calls: Vec::new(),
            transactions: 0,
        }
    }

    /// Queues the answer of a query, builder style.
    pub fn result(mut self, r: Result<Rows, Error>) -> Self {
        self.results.push_back(r);
        self
    }

    /// Queues the answer of an execute, builder style.
    pub fn affected(mut self, r: Result<u64, Error>) -> Self {
        self.affected.push_back(r);
        self
    }
}

/// A scripted message service for native tests: fetches take from `inbox` (from the front,
/// up to `max`), publishes and acknowledgements are recorded.
#[derive(Debug, Clone, Default)]
pub struct FakeMessaging {
    /// Messages waiting to be fetched.
    pub inbox: VecDeque<Message>,
    /// Each publish call: the connection and its messages.
    pub published: Vec<(String, Vec<Outgoing>)>,
    /// Each fetch call: connection, stream, group, max and wait.
    pub fetches: Vec<(String, String, String, u32, u32)>,
    /// The ack ids acknowledged, in order.
    pub acked: Vec<String>,
    /// The error the next call returns instead of its work, if any.
    pub fail_next: Option<Error>,
}

/// One request a plugin sent through [`crate::http`], as a [`FakeHttp`] recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCall {
    /// The method, upper case.
    pub method: String,
    /// The URL.
    pub url: String,
    /// The header fields, as given.
    pub headers: Vec<(String, String)>,
    /// The body, if any.
    pub body: Option<Vec<u8>>,
}

/// A scripted web server for native tests: a request is answered by the route of its method
/// and URL (the same answer every time), else with a 404 and an empty body; every request
/// lands in `calls`. Answers are final: redirects are answered, not followed, unless a route
/// for the `Location` exists.
#[derive(Debug, Clone, Default)]
pub struct FakeHttp {
    /// Method, URL and answer of each route.
    pub routes: Vec<(String, String, Result<Response, HttpError>)>,
    /// The requests sent, in order.
    pub calls: Vec<HttpCall>,
}

impl FakeHttp {
    /// A server with no route.
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers `method` `url` with `status` and `body`, builder style.
    pub fn route(self, method: &str, url: &str, status: u16, body: impl Into<Vec<u8>>) -> Self {
        let resp = Response {
            status,
            headers: Vec::new(),
            body: body.into(),
            url: url.to_string(),
        };
        self.answer(method, url, Ok(resp))
    }

    /// Answers `method` `url` with `answer` (a response, or a failed request), builder style.
    pub fn answer(mut self, method: &str, url: &str, answer: Result<Response, HttpError>) -> Self {
        self.routes
            .push((method.to_ascii_uppercase(), url.to_string(), answer));
        self
    }

    /// Records a request and answers it.
    fn send(
        &mut self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: Option<&[u8]>,
    ) -> Result<Response, HttpError> {
        self.calls.push(HttpCall {
            method: method.to_string(),
            url: url.to_string(),
            headers: headers.to_vec(),
            body: body.map(<[u8]>::to_vec),
        });
        let route = self.routes.iter().find(|(m, u, _)| m == method && u == url);
        match route {
            Some((_, _, answer)) => answer.clone(),
            None => Ok(Response {
                status: 404,
                headers: Vec::new(),
                body: Vec::new(),
                url: url.to_string(),
            }),
        }
    }
}

/// Sends a request to the current test's [`FakeHttp`]; `None` without one.
#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(crate) fn send_http(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: Option<&[u8]>,
) -> Option<Result<Response, HttpError>> {
    try_with_host(|h| h.http.as_mut().map(|f| f.send(method, url, headers, body))).flatten()
}

thread_local! {
    static CURRENT: RefCell<Option<TestHost>> = const { RefCell::new(None) };
}

/// Runs `f` on the host of the current test; outside one, host calls are dropped.
#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(crate) fn with_host<R: Default>(f: impl FnOnce(&mut TestHost) -> R) -> R {
    try_with_host(f).unwrap_or_default()
}

/// Runs `f` on the host of the current test, if there is one.
#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(crate) fn try_with_host<R>(f: impl FnOnce(&mut TestHost) -> R) -> Option<R> {
    CURRENT.with(|c| c.borrow_mut().as_mut().map(f))
}

impl TestHost {
    /// An empty host.
    pub fn new() -> Self {
        Self::default()
    }

    /// Grants a secret, builder style.
    pub fn secret(mut self, name: &str, value: &str) -> Self {
        self.secrets.insert(name.into(), value.into());
        self
    }

    /// Answers the plugin's SQL calls with `fake`, builder style.
    pub fn with_sql(mut self, fake: FakeSql) -> Self {
        self.sql = Some(fake);
        self
    }

    /// Answers the plugin's messaging calls with `fake`, builder style.
    pub fn with_messaging(mut self, fake: FakeMessaging) -> Self {
        self.messaging = Some(fake);
        self
    }

    /// Answers the plugin's HTTP requests with `fake`, builder style.
    pub fn with_http(mut self, fake: FakeHttp) -> Self {
        self.http = Some(fake);
        self
    }

    /// Runs `f` with this host installed for the current thread, then takes it back: host
    /// calls made by plugin code inside `f` (logs, counters, state, secrets) land here. Use it
    /// to drive a plugin's trait methods directly, batch by batch.
    pub fn run<R>(&mut self, f: impl FnOnce() -> R) -> R {
        CURRENT.with(|c| *c.borrow_mut() = Some(std::mem::take(self)));
        let out = f();
        CURRENT.with(|c| {
            if let Some(h) = c.borrow_mut().take() {
                *self = h;
            }
        });
        out
    }

    /// Opens transform `T` with `config` (JSON text) and processes one batch.
    pub fn transform<T: Transform>(
        &mut self,
        config: &str,
        records: Vec<Record>,
    ) -> Result<Processed, Error> {
        self.run(|| {
            let mut t = T::open(parse_config(config)?)?;
            crate::transform::run_batch(&mut t, records)
        })
    }

    /// Opens transform `T` with `config` (JSON text), to drive it batch by batch with
    /// [`TestHost::batch`] (as the host does: one `open`, then many batches).
    pub fn open<T: Transform>(&mut self, config: &str) -> Result<T, Error> {
        self.run(|| T::open(parse_config(config)?))
    }

    /// Calls `finish` on an opened transform `t`, as the host does after the run's last batch.
    pub fn finish<T: Transform>(&mut self, t: &mut T) -> Result<Processed, Error> {
        self.run(|| crate::transform::run_finish(t))
    }

    /// The named outputs transform `T` has with `config` (JSON text).
    pub fn outputs<T: Transform>(&mut self, config: &str) -> Result<Vec<String>, Error> {
        self.run(|| T::outputs(&parse_config(config)?))
    }

    /// Processes one batch through an opened transform `t`, `end_batch` included.
    pub fn batch<T: Transform>(
        &mut self,
        t: &mut T,
        records: Vec<Record>,
    ) -> Result<Processed, Error> {
        self.run(|| crate::transform::run_batch(t, records))
    }

    /// Opens source `S` with `config` and a resume `cursor`, and reads batches of `max` until
    /// it ends; returns every batch.
    pub fn source<S: Source>(
        &mut self,
        config: &str,
        cursor: Option<String>,
        max: u32,
    ) -> Result<Vec<Batch>, Error> {
        self.run(|| {
            let mut s = S::open(parse_config(config)?, cursor)?;
            let mut batches = Vec::new();
            while let Some(b) = s.next(max)? {
                batches.push(b);
            }
            Ok(batches)
        })
    }

    /// Opens sink `S` with `config`, writes `records` as one batch and flushes.
    pub fn sink<S: Sink>(&mut self, config: &str, records: Vec<Record>) -> Result<(), Error> {
        self.run(|| {
            let mut s = S::open(parse_config(config)?)?;
            s.write(records)?;
            s.flush()
        })
    }
}
