//! The `autoflow:plugin/sql` imports: parameterised queries and statements on the SQL
//! connections granted to a step (sqlx's `Any` driver over Postgres, MySQL/MariaDB and SQLite),
//! in their own transaction or in one the plugin holds as a resource. The capability's state is
//! [`SqlState`], one per step, which keeps the transactions its plugin holds.
use std::collections::HashMap;

use futures::TryStreamExt;
use sqlx::any::{Any, AnyArguments, AnyRow, AnyTypeInfoKind};
use sqlx::{Column, Row, ValueRef};
use wasmtime::component::{HasData, Linker, Resource};

use super::{ConnectionKind, Grants, Integrations};
use crate::world::PluginError;
use crate::world::source::autoflow::plugin0_1_0::sql::{
    self as wit, Dialect, Rows, Transaction, Value,
};

/// Bytes of rows one query may return to a plugin; past that it fails and says to page.
pub const MAX_RESULT_BYTES: usize = 64 << 20;

/// The SQL capability of one step: the connections granted to it, the process's clients, and
/// the transactions its plugin holds (`None` once committed or rolled back), by resource id.
pub struct SqlState {
    grants: Grants,
    clients: Integrations,
    transactions: HashMap<u32, Option<crate::store::tx::Tx>>,
    next_id: u32,
}

/// Projects a step's store data to its [`SqlState`] in the linker.
struct HasSql;

impl HasData for HasSql {
    type Data<'a> = &'a mut SqlState;
}

/// Links the `autoflow:plugin/sql` imports, implemented on the [`SqlState`] that `get` finds in
/// a store's data.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut SqlState,
) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, HasSql>(linker, get)
}

type Query<'q> = sqlx::query::Query<'q, Any, AnyArguments<'q>>;

fn bind(statement: &str, params: Vec<Value>) -> Query<'_> {
    params
        .into_iter()
        .fold(sqlx::query(statement), |q, p| match p {
            Value::Null => q.bind(None::<String>),
            Value::Boolean(b) => q.bind(b),
            Value::Integer(i) => q.bind(i),
            Value::Double(f) => q.bind(f),
            Value::Text(s) => q.bind(s),
            Value::Bytes(b) => q.bind(b),
        })
}

/// A plugin-facing error for what sqlx said: connection trouble is worth retrying, the rest
/// (syntax, constraints, types) is not.
fn classify(e: sqlx::Error) -> PluginError {
    match &e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => PluginError::Retryable(format!("sql: {e}")),
        sqlx::Error::Database(d)
            if matches!(
                d.code().as_deref(),
                Some("40001" | "40P01" | "1213" | "1205")
            ) =>
        {
            PluginError::Retryable(format!("sql: {e}"))
        }
        _ => PluginError::Fatal(format!("sql: {e}")),
    }
}

/// Column `i` of `row` as a plugin value, and about how many bytes it holds.
fn value_of(row: &AnyRow, i: usize) -> Result<(Value, usize), sqlx::Error> {
    let raw = row.try_get_raw(i)?;
    if raw.is_null() {
        return Ok((Value::Null, 1));
    }
    let kind = raw.type_info().kind();
    Ok(match kind {
        AnyTypeInfoKind::Null => (Value::Null, 1),
        AnyTypeInfoKind::Bool => (Value::Boolean(row.try_get(i)?), 1),
        AnyTypeInfoKind::SmallInt => (Value::Integer(i64::from(row.try_get::<i16, _>(i)?)), 8),
        AnyTypeInfoKind::Integer => (Value::Integer(i64::from(row.try_get::<i32, _>(i)?)), 8),
        AnyTypeInfoKind::BigInt => (Value::Integer(row.try_get(i)?), 8),
        AnyTypeInfoKind::Real => (Value::Double(f64::from(row.try_get::<f32, _>(i)?)), 8),
        AnyTypeInfoKind::Double => (Value::Double(row.try_get(i)?), 8),
        AnyTypeInfoKind::Text => {
            let s: String = row.try_get(i)?;
            let n = s.len();
            (Value::Text(s), n)
        }
        AnyTypeInfoKind::Blob => {
            let b: Vec<u8> = row.try_get(i)?;
            let n = b.len();
            (Value::Bytes(b), n)
        }
    })
}

async fn query<'c, E: sqlx::Executor<'c, Database = Any>>(
    exec: E,
    statement: &str,
    params: Vec<Value>,
) -> Result<Rows, PluginError> {
    let mut stream = bind(statement, params).fetch(exec);
    let mut rows = Rows {
        columns: Vec::new(),
        rows: Vec::new(),
    };
    let mut bytes = 0;
    while let Some(row) = stream.try_next().await.map_err(classify)? {
        if rows.columns.is_empty() {
            rows.columns = row.columns().iter().map(|c| c.name().to_string()).collect();
        }
        let mut values = Vec::with_capacity(rows.columns.len());
        for i in 0..row.columns().len() {
            let (value, size) = value_of(&row, i).map_err(classify)?;
            bytes += size;
            values.push(value);
        }
        if bytes > MAX_RESULT_BYTES {
            return Err(PluginError::Fatal(format!(
                "sql: the result is larger than {} MiB; select fewer rows (LIMIT) and page",
                MAX_RESULT_BYTES >> 20
            )));
        }
        rows.rows.push(values);
    }
    Ok(rows)
}

async fn execute<'c, E: sqlx::Executor<'c, Database = Any>>(
    exec: E,
    statement: &str,
    params: Vec<Value>,
) -> Result<u64, PluginError> {
    bind(statement, params)
        .execute(exec)
        .await
        .map(|r| r.rows_affected())
        .map_err(classify)
}

impl SqlState {
    /// The SQL capability of a step granted `grants`, connecting through `clients`.
    pub fn new(grants: Grants, clients: Integrations) -> Self {
        Self {
            grants,
            clients,
            transactions: HashMap::new(),
            next_id: 0,
        }
    }

    /// The pool of SQL connection `name`. (Not `async fn` on `&self`: a future holding a
    /// shared borrow of the state would not be `Send`.)
    fn pool(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<sqlx::AnyPool, PluginError>> + Send + 'static {
        let found = self
            .grants
            .granted(name, true)
            .map(|grant| (self.clients.clone(), grant));
        async move {
            let (clients, grant) = found?;
            clients.sql(&grant).await.map_err(PluginError::from)
        }
    }

    /// The slot of transaction `tx`; a resource this state did not make traps.
    fn slot(
        &mut self,
        tx: &Resource<Transaction>,
    ) -> wasmtime::Result<&mut Option<crate::store::tx::Tx>> {
        self.transactions
            .get_mut(&tx.rep())
            .ok_or_else(|| wasmtime::format_err!("sql: unknown transaction handle"))
    }

    fn open_transaction(
        &mut self,
        tx: &Resource<Transaction>,
    ) -> wasmtime::Result<Result<&mut crate::store::tx::Tx, PluginError>> {
        Ok(self.slot(tx)?.as_mut().ok_or_else(|| {
            PluginError::Fatal("sql: the transaction is already committed or rolled back".into())
        }))
    }
}

impl wit::Host for SqlState {
    async fn query(
        &mut self,
        connection: String,
        statement: String,
        params: Vec<Value>,
    ) -> wasmtime::Result<Result<Rows, PluginError>> {
        Ok(match self.pool(&connection).await {
            Ok(pool) => query(&pool, &statement, params).await,
            Err(e) => Err(e),
        })
    }

    async fn execute(
        &mut self,
        connection: String,
        statement: String,
        params: Vec<Value>,
    ) -> wasmtime::Result<Result<u64, PluginError>> {
        Ok(match self.pool(&connection).await {
            Ok(pool) => execute(&pool, &statement, params).await,
            Err(e) => Err(e),
        })
    }

    async fn dialect_of(
        &mut self,
        connection: String,
    ) -> wasmtime::Result<Result<Dialect, PluginError>> {
        Ok(self
            .grants
            .granted(&connection, true)
            .map(|g| match g.kind {
                ConnectionKind::Mysql => Dialect::Mysql,
                ConnectionKind::Sqlite => Dialect::Sqlite,
                _ => Dialect::Postgres,
            }))
    }

    async fn begin(
        &mut self,
        connection: String,
    ) -> wasmtime::Result<Result<Resource<Transaction>, PluginError>> {
        let pool = match self.pool(&connection).await {
            Ok(p) => p,
            Err(e) => return Ok(Err(e)),
        };
        match crate::store::tx::Tx::begin_on(&pool, "BEGIN").await {
            Ok(tx) => {
                let id = self.next_id;
                self.next_id = self.next_id.wrapping_add(1);
                self.transactions.insert(id, Some(tx));
                Ok(Ok(Resource::new_own(id)))
            }
            Err(e) => Ok(Err(classify(e))),
        }
    }
}

impl wit::HostTransaction for SqlState {
    async fn query(
        &mut self,
        tx: Resource<Transaction>,
        statement: String,
        params: Vec<Value>,
    ) -> wasmtime::Result<Result<Rows, PluginError>> {
        Ok(match self.open_transaction(&tx)? {
            Ok(t) => query(&mut **t, &statement, params).await,
            Err(e) => Err(e),
        })
    }

    async fn execute(
        &mut self,
        tx: Resource<Transaction>,
        statement: String,
        params: Vec<Value>,
    ) -> wasmtime::Result<Result<u64, PluginError>> {
        Ok(match self.open_transaction(&tx)? {
            Ok(t) => execute(&mut **t, &statement, params).await,
            Err(e) => Err(e),
        })
    }

    async fn commit(
        &mut self,
        tx: Resource<Transaction>,
    ) -> wasmtime::Result<Result<(), PluginError>> {
        let Some(t) = self.slot(&tx)?.take() else {
            return Ok(Err(PluginError::Fatal(
                "sql: the transaction is already committed or rolled back".into(),
            )));
        };
        Ok(t.commit().await.map_err(classify))
    }

    async fn rollback(
        &mut self,
        tx: Resource<Transaction>,
    ) -> wasmtime::Result<Result<(), PluginError>> {
        let Some(t) = self.slot(&tx)?.take() else {
            return Ok(Err(PluginError::Fatal(
                "sql: the transaction is already committed or rolled back".into(),
            )));
        };
        Ok(t.rollback().await.map_err(classify))
    }

    async fn drop(&mut self, tx: Resource<Transaction>) -> wasmtime::Result<()> {
        // A transaction still open is rolled back as its connection closes (it is not kept).
        self.transactions.remove(&tx.rep());
        Ok(())
    }
}
