//! The real services the tests run against, started by `.ci/services.sh` (which `cargo xtask ci`
//! runs): PostgreSQL and an S3 server. Their addresses come from the environment.

use sqlx::{AssertSqlSafe, Connection, PgConnection};

/// The value of a variable `.ci/services.sh start` exports; panics with how to get it.
pub fn service_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is unset: start the services with `bash .ci/services.sh start` (cargo xtask ci does)")
    })
}

/// A fresh PostgreSQL database of its own for one test. Drop it with [`Database::drop_now`].
pub struct Database {
    admin_url: String,
    name: String,
}

impl Database {
    /// Creates `pixelmill_test_<random>` on the server of PIXELMILL_TEST_DATABASE_URL.
    pub async fn create() -> Database {
        let admin_url = service_env("PIXELMILL_TEST_DATABASE_URL");
        let name = format!("pixelmill_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&admin_url).await.expect("connect to PostgreSQL");
        // The name is generated above from hex digits only.
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create database");
        Database { admin_url, name }
    }

    /// The URL of this database.
    pub fn url(&self) -> String {
        let (server, _) = self.admin_url.rsplit_once('/').expect("a database URL ends with /<database>");
        format!("{server}/{}", self.name)
    }

    /// Runs `test` with the URL of a fresh database, in a task of its own so that a failed
    /// assertion still drops the database; the failure is then raised here.
    pub async fn with_fresh<F, Fut>(test: F)
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let database = Database::create().await;
        let outcome = tokio::spawn(test(database.url())).await;
        // The test's pooled connections may still be open: `drop_now` forces them closed.
        database.drop_now().await;
        if let Err(failure) = outcome {
            std::panic::resume_unwind(failure.into_panic());
        }
    }

    pub async fn drop_now(self) {
        let mut admin = PgConnection::connect(&self.admin_url).await.expect("connect to PostgreSQL");
        sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE {} WITH (FORCE)", self.name)))
            .execute(&mut admin)
            .await
            .expect("drop database");
    }
}
