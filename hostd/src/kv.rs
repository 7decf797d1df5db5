//! `wasi:keyvalue@0.2.0-draft` (store, atomics, batch) for apps: the
//! interfaces `wasmtime serve -S keyvalue` gives, so a component built for
//! them runs here unchanged. `open("default")` (or `open("")`, as
//! wasmtime's in-memory store names it) and the buckets the manifest lists
//! are the app's; the stores themselves are `cranefleet-kv`'s.

use std::sync::Arc;

use kv::{KvError, KvStore};
use schema::manifest::KeyValue;
use wasmtime::component::{HasData, Resource, ResourceTable};

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit/keyvalue",
        world: "wasi:keyvalue/imports",
        imports: { default: async | trappable },
        with: {
            "wasi:keyvalue/store.bucket": super::Bucket,
        },
        trappable_error_type: {
            "wasi:keyvalue/store.error" => kv::KvError,
        },
    });
}

use bindings::wasi::keyvalue::{atomics, batch, store};

/// An open bucket in an instance's resource table.
pub struct Bucket {
    name: String,
}

fn table_err(e: wasmtime::component::ResourceTableError) -> KvError {
    KvError::Other(e.to_string())
}

/// What an instance's store holds for `wasi:keyvalue`: the app's store
/// (none for an app that never opens one) and which buckets it may open.
pub struct KvCtx {
    pub store: Option<KvStore>,
    pub settings: Arc<KeyValue>,
}

/// The view the bindings are implemented on.
pub struct KvView<'a> {
    pub ctx: &'a KvCtx,
    pub table: &'a mut ResourceTable,
}

impl KvView<'_> {
    fn bucket(&mut self, b: &Resource<Bucket>) -> Result<(KvStore, String), KvError> {
        let name = self.table.get(b).map_err(table_err)?.name.clone();
        let store = self
            .ctx
            .store
            .clone()
            .ok_or_else(|| KvError::Other("this app has no key-value store".into()))?;
        Ok((store, name))
    }
}

impl store::Host for KvView<'_> {
    async fn open(&mut self, identifier: String) -> Result<Resource<Bucket>, KvError> {
        if !self.ctx.settings.has_bucket(&identifier) || self.ctx.store.is_none() {
            return Err(KvError::NoSuchStore(identifier));
        }
        self.table
            .push(Bucket {
                name: KeyValue::bucket_name(&identifier).to_string(),
            })
            .map_err(table_err)
    }

    fn convert_error(&mut self, err: KvError) -> wasmtime::Result<store::Error> {
        Ok(match err {
            KvError::NoSuchStore(_) => store::Error::NoSuchStore,
            KvError::AccessDenied(_) => store::Error::AccessDenied,
            KvError::Other(e) => store::Error::Other(e),
        })
    }
}

impl store::HostBucket for KvView<'_> {
    async fn get(&mut self, b: Resource<Bucket>, key: String) -> Result<Option<Vec<u8>>, KvError> {
        let (s, name) = self.bucket(&b)?;
        s.get(&name, &key).await
    }

    async fn set(
        &mut self,
        b: Resource<Bucket>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), KvError> {
        let (s, name) = self.bucket(&b)?;
        s.set(&name, &key, &value, self.ctx.settings.max_bytes())
            .await
    }

    async fn delete(&mut self, b: Resource<Bucket>, key: String) -> Result<(), KvError> {
        let (s, name) = self.bucket(&b)?;
        s.delete_many(&name, &[key]).await
    }

    async fn exists(&mut self, b: Resource<Bucket>, key: String) -> Result<bool, KvError> {
        let (s, name) = self.bucket(&b)?;
        Ok(s.get(&name, &key).await?.is_some())
    }

    async fn list_keys(
        &mut self,
        b: Resource<Bucket>,
        cursor: Option<u64>,
    ) -> Result<store::KeyResponse, KvError> {
        let (s, name) = self.bucket(&b)?;
        let (keys, cursor) = s.list(&name, cursor).await?;
        Ok(store::KeyResponse { keys, cursor })
    }

    async fn drop(&mut self, b: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(b)?;
        Ok(())
    }
}

impl atomics::Host for KvView<'_> {
    async fn increment(
        &mut self,
        b: Resource<Bucket>,
        key: String,
        delta: u64,
    ) -> Result<u64, KvError> {
        let (s, name) = self.bucket(&b)?;
        s.increment(&name, &key, delta, self.ctx.settings.max_bytes())
            .await
    }
}

impl batch::Host for KvView<'_> {
    async fn get_many(
        &mut self,
        b: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Result<Vec<Option<(String, Vec<u8>)>>, KvError> {
        let (s, name) = self.bucket(&b)?;
        let values = s.get_many(&name, &keys).await?;
        Ok(keys
            .into_iter()
            .zip(values)
            .map(|(k, v)| v.map(|v| (k, v)))
            .collect())
    }

    async fn set_many(
        &mut self,
        b: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Result<(), KvError> {
        let (s, name) = self.bucket(&b)?;
        let pairs: Vec<(&str, &[u8])> = key_values
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .collect();
        s.set_many(&name, &pairs, self.ctx.settings.max_bytes())
            .await
    }

    async fn delete_many(&mut self, b: Resource<Bucket>, keys: Vec<String>) -> Result<(), KvError> {
        let (s, name) = self.bucket(&b)?;
        s.delete_many(&name, &keys).await
    }
}

struct HasKv;

impl HasData for HasKv {
    type Data<'a> = KvView<'a>;
}

/// Adds `wasi:keyvalue` (store, atomics, batch) to a component linker.
pub fn add_to_linker<T: Send + 'static>(
    l: &mut wasmtime::component::Linker<T>,
    f: fn(&mut T) -> KvView<'_>,
) -> wasmtime::Result<()> {
    store::add_to_linker::<_, HasKv>(l, f)?;
    atomics::add_to_linker::<_, HasKv>(l, f)?;
    batch::add_to_linker::<_, HasKv>(l, f)?;
    Ok(())
}
