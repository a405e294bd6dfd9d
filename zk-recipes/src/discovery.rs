//! Service discovery in Apache Curator's `curator-x-discovery` layout: instances registered
//! as JSON nodes `base/<service>/<id>`, kept present through session loss on a
//! [`PersistentNode`], and queried by service name.

use crate::persistent::PersistentNode;
use crate::plumbing::{child_path, deadline_after, with_retries};
use serde_json::Value;
use std::time::Duration;
use tokio::time::Instant;
use zk_core::{Client, CreateMode, Error, Result};

/// How long an instance's registration lives (Curator's `ServiceType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ServiceType {
    /// EPHEMERAL: gone with the registering session (and re-created in the next one).
    #[default]
    Dynamic,
    /// EPHEMERAL_SEQUENTIAL: `base/<service>/<id><seq>`.
    DynamicSequential,
    /// PERSISTENT.
    Static,
    /// PERSISTENT.
    Permanent,
}

impl ServiceType {
    fn as_str(self) -> &'static str {
        match self {
            ServiceType::Dynamic => "DYNAMIC",
            ServiceType::DynamicSequential => "DYNAMIC_SEQUENTIAL",
            ServiceType::Static => "STATIC",
            ServiceType::Permanent => "PERMANENT",
        }
    }

    fn parse(s: &str) -> Option<ServiceType> {
        Some(match s {
            "DYNAMIC" => ServiceType::Dynamic,
            "DYNAMIC_SEQUENTIAL" => ServiceType::DynamicSequential,
            "STATIC" => ServiceType::Static,
            "PERMANENT" => ServiceType::Permanent,
            _ => return None,
        })
    }

    fn mode(self) -> CreateMode {
        match self {
            ServiceType::Dynamic => CreateMode::Ephemeral,
            ServiceType::DynamicSequential => CreateMode::EphemeralSequential,
            ServiceType::Static | ServiceType::Permanent => CreateMode::Persistent,
        }
    }
}

/// One instance of a service (Curator's `ServiceInstance`), stored as the JSON
/// `curator-x-discovery` 5.4's `JsonInstanceSerializer` writes.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ServiceInstance {
    /// The service's name (a node name under the base path).
    pub name: String,
    /// This instance's id (a node name; unique within the service).
    pub id: String,
    /// Its address, if any.
    pub address: Option<String>,
    /// Its port, if any.
    pub port: Option<i32>,
    /// Its TLS port, if any.
    pub ssl_port: Option<i32>,
    /// Any JSON (`null` for none). Curator's Jackson writes a Java object payload with an
    /// `"@class"` member naming its class; a Java reader needs it.
    pub payload: Value,
    /// Registration time, milliseconds since the Unix epoch.
    pub registration_time_utc: i64,
    /// How long the registration lives.
    pub service_type: ServiceType,
    /// Curator's `UriSpec` as its JSON (`{"parts": [{"value", "variable"}, …]}`), or `null`.
    pub uri_spec: Value,
    /// Read from the JSON when present (Curator's `enabled`, default `true`); 5.4 never writes
    /// it, and neither does this.
    pub enabled: bool,
}

impl ServiceInstance {
    /// An instance `id` of service `name`, registered now, [`ServiceType::Dynamic`], with no
    /// address, ports or payload (set the fields).
    pub fn new(name: impl Into<String>, id: impl Into<String>) -> ServiceInstance {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        ServiceInstance {
            name: name.into(),
            id: id.into(),
            address: None,
            port: None,
            ssl_port: None,
            payload: Value::Null,
            registration_time_utc: now,
            service_type: ServiceType::Dynamic,
            uri_spec: Value::Null,
            enabled: true,
        }
    }

    /// The node data: Curator 5.4's JSON, members in its order.
    pub fn to_json(&self) -> Vec<u8> {
        let text = |s: &str| Value::String(s.to_owned()).to_string();
        let opt_text = |s: &Option<String>| s.as_deref().map_or("null".to_owned(), text);
        let opt_int = |n: Option<i32>| n.map_or("null".to_owned(), |n| n.to_string());
        format!(
            "{{\"name\":{},\"id\":{},\"address\":{},\"port\":{},\"sslPort\":{},\"payload\":{},\
             \"registrationTimeUTC\":{},\"serviceType\":\"{}\",\"uriSpec\":{}}}",
            text(&self.name),
            text(&self.id),
            opt_text(&self.address),
            opt_int(self.port),
            opt_int(self.ssl_port),
            self.payload,
            self.registration_time_utc,
            self.service_type.as_str(),
            self.uri_spec
        )
        .into_bytes()
    }

    /// Parses a node's data (unknown members are ignored, as Curator's reader does).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if it is not such a JSON object.
    pub fn from_json(data: &[u8]) -> Result<ServiceInstance> {
        let bad = |why: &str| Error::InvalidArgument(format!("not a service instance: {why}"));
        let v: Value = serde_json::from_slice(data).map_err(|e| bad(&e.to_string()))?;
        let o = v.as_object().ok_or_else(|| bad("not an object"))?;
        let text = |k: &str| o.get(k).and_then(Value::as_str).map(str::to_owned);
        let int = |k: &str| {
            o.get(k)
                .and_then(Value::as_i64)
                .and_then(|n| i32::try_from(n).ok())
        };
        Ok(ServiceInstance {
            name: text("name").unwrap_or_default(),
            id: text("id").unwrap_or_default(),
            address: text("address"),
            port: int("port"),
            ssl_port: int("sslPort"),
            payload: o.get("payload").cloned().unwrap_or(Value::Null),
            registration_time_utc: o
                .get("registrationTimeUTC")
                .and_then(Value::as_i64)
                .unwrap_or(0),
            service_type: match o.get("serviceType") {
                None | Some(Value::Null) => ServiceType::Dynamic,
                Some(t) => t
                    .as_str()
                    .and_then(ServiceType::parse)
                    .ok_or_else(|| bad("unknown serviceType"))?,
            },
            uri_spec: o.get("uriSpec").cloned().unwrap_or(Value::Null),
            enabled: o.get("enabled").and_then(Value::as_bool).unwrap_or(true),
        })
    }
}

/// Registers and finds service instances under a base path, in `curator-x-discovery`'s
/// layout (Curator's `ServiceDiscovery` with `JsonInstanceSerializer`).
///
/// ```no_run
/// # async fn f(client: zk_core::Client) -> zk_core::Result<()> {
/// use zk_recipes::{ServiceDiscovery, ServiceInstance};
///
/// let discovery = ServiceDiscovery::new(&client, "/services");
/// let mut me = ServiceInstance::new("api", "host-7");
/// me.address = Some("10.0.0.7".into());
/// me.port = Some(8080);
/// let registration = discovery.register(me).await?;
/// for instance in discovery.query_for_instances("api").await? {
///     println!("{} at {:?}:{:?}", instance.id, instance.address, instance.port);
/// }
/// registration.unregister().await?;
/// # Ok(()) }
/// ```
///
/// # Behavior
///
/// * **Layout (curator-x-discovery 5.4).** An instance is `base/<name>/<id>` (a
///   `DynamicSequential` one `base/<name>/<id><seq>`), EPHEMERAL for `Dynamic` kinds and
///   PERSISTENT otherwise, parents as containers; data: the JSON of
///   [`ServiceInstance::to_json`], byte for byte what Curator 5.4 writes for the same values.
///   Java services using Curator's `ServiceDiscovery` on the same base path find ours, and we
///   theirs.
/// * **Registration kept** ([`PersistentNode`]): re-created after a deletion and in the new
///   session after a session loss. An ephemeral node of another session already at the path
///   (an earlier registration of the same id) is deleted and ours created, as Curator's
///   `NodeExists` → delete → create. A registration of the same id that replaces ours
///   later, while ours is present, wins (as in Curator): ours waits for it to go, then comes
///   back; two live registrations of one id never replace each other in a loop.
/// * **SUSPENDED / LOST.** [`Registration::is_present`] is false while disconnected; queries
///   wait for the connection (connection loss is retried).
/// * **Deadlines and cancel safety.** `register_timeout` / `register_until` return `Ok(None)`
///   when the node could not be created in time, and remove it in the background; dropping a
///   [`Registration`] unregisters in the background.
#[derive(Debug, Clone)]
pub struct ServiceDiscovery {
    client: Client,
    base: String,
}

impl ServiceDiscovery {
    /// Discovery under `base_path`.
    pub fn new(client: &Client, base_path: &str) -> ServiceDiscovery {
        ServiceDiscovery {
            client: client.clone(),
            base: base_path.to_owned(),
        }
    }

    /// Registers `instance` and waits until its node exists.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a name or id that is empty or contains `/`,
    /// [`Error::BadPath`] for a base path ZooKeeper refuses; errors of
    /// [`PersistentNode::wait_for_initial_create`].
    pub async fn register(&self, instance: ServiceInstance) -> Result<Registration> {
        self.register_inner(instance, None)
            .await?
            .ok_or(Error::Timeout { sent: false })
    }

    /// [`register`](Self::register) with a deadline: `Ok(None)` if the node could not be
    /// created in time (nothing is left registered).
    ///
    /// # Errors
    /// As [`register`](Self::register).
    pub async fn register_timeout(
        &self,
        instance: ServiceInstance,
        timeout: Duration,
    ) -> Result<Option<Registration>> {
        self.register_inner(instance, Some(deadline_after(timeout)))
            .await
    }

    /// [`register_timeout`](Self::register_timeout) with an absolute deadline.
    ///
    /// # Errors
    /// As [`register`](Self::register).
    pub async fn register_until(
        &self,
        instance: ServiceInstance,
        deadline: Instant,
    ) -> Result<Option<Registration>> {
        self.register_inner(instance, Some(deadline)).await
    }

    async fn register_inner(
        &self,
        instance: ServiceInstance,
        deadline: Option<Instant>,
    ) -> Result<Option<Registration>> {
        self.check_base()?;
        for part in [&instance.name, &instance.id] {
            if part.is_empty() || part.contains('/') {
                return Err(Error::InvalidArgument(format!(
                    "a service name or instance id is a node name: {part:?}"
                )));
            }
        }
        let path = self.path_for(&instance.name, &instance.id);
        let node = PersistentNode::new(
            &self.client,
            &path,
            instance.service_type.mode(),
            instance.to_json(),
        )
        .replace_foreign();
        // dropped on any way out but success: the node is removed in the background
        let created = match deadline {
            Some(d) => node.wait_for_initial_create_until(d).await?,
            None => Some(node.wait_for_initial_create().await?),
        };
        Ok(created.map(|()| Registration { node, instance }))
    }

    /// The names of every service (the children of the base path).
    ///
    /// # Errors
    /// Server errors; connection loss is retried.
    pub async fn query_for_names(&self) -> Result<Vec<String>> {
        self.children(&self.base).await
    }

    /// Every registered instance of `name`. Instances whose data is not a service instance
    /// are left out (Curator's reader would fail on them).
    ///
    /// # Errors
    /// Server errors; connection loss is retried.
    pub async fn query_for_instances(&self, name: &str) -> Result<Vec<ServiceInstance>> {
        self.check_base()?;
        let mut out = Vec::new();
        for id in self.children(&child_path(&self.base, name)).await? {
            if let Some(i) = self.query_for_instance(name, &id).await? {
                out.push(i);
            }
        }
        Ok(out)
    }

    /// The instance `id` of `name`, if registered (and readable as one).
    ///
    /// # Errors
    /// Server errors; connection loss is retried.
    pub async fn query_for_instance(
        &self,
        name: &str,
        id: &str,
    ) -> Result<Option<ServiceInstance>> {
        self.check_base()?;
        let path = self.path_for(name, id);
        match with_retries(None, || self.client.get_data(&path)).await {
            Ok(Some((data, _))) => Ok(ServiceInstance::from_json(&data).ok()),
            Ok(None) | Err(Error::NoNode) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The base path must be one ZooKeeper takes: paths under an empty one would be made up
    /// (`/<name>/<id>`, at the root).
    fn check_base(&self) -> Result<()> {
        zk_core::validate_path(&self.base, false).map_err(Error::from)
    }

    fn path_for(&self, name: &str, id: &str) -> String {
        child_path(&child_path(&self.base, name), id)
    }

    async fn children(&self, path: &str) -> Result<Vec<String>> {
        match with_retries(None, || self.client.get_children(path)).await {
            Ok(c) => {
                let mut c = c.unwrap_or_default();
                c.sort();
                Ok(c)
            }
            Err(Error::NoNode) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }
}

/// A registered instance, kept registered until [`unregister`](Self::unregister) or drop.
#[derive(Debug)]
pub struct Registration {
    node: PersistentNode,
    instance: ServiceInstance,
}

impl Registration {
    /// The instance as registered (or last updated).
    pub fn instance(&self) -> &ServiceInstance {
        &self.instance
    }

    /// The instance's node (for `DynamicSequential`, with its sequence).
    pub fn path(&self) -> Option<String> {
        self.node.actual_path()
    }

    /// Whether the node was present at the keeper's last look.
    pub fn is_present(&self) -> bool {
        self.node.is_present()
    }

    /// Replaces the registered data (Curator's `updateService`); the name and id stay.
    ///
    /// # Errors
    /// [`Error::DataTooLarge`] if the instance's JSON is over the client's
    /// [`max_data_len`](zk_core::Client::max_data_len) (as [`PersistentNode::set_data`]):
    /// nothing changes.
    pub fn update(&mut self, mut instance: ServiceInstance) -> Result<()> {
        instance.name.clone_from(&self.instance.name);
        instance.id.clone_from(&self.instance.id);
        instance.service_type = self.instance.service_type;
        self.node.set_data(instance.to_json())?;
        self.instance = instance;
        Ok(())
    }

    /// Unregisters: stops keeping the node and deletes it.
    ///
    /// # Errors
    /// As [`PersistentNode::close`].
    pub async fn unregister(self) -> Result<()> {
        self.node.close().await
    }
}
