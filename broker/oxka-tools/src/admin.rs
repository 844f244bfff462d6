//! A small admin client over oxka-protocol's `ClientConnection`: connect to one broker of the
//! bootstrap list, learn its API versions (ApiVersions), and send typed requests at the highest
//! version both this tool (the `kafka-protocol` crate) and the broker speak. One request at a time;
//! the tools are one-shot programs, so there is no pooling and no retry beyond trying each address
//! (a connection a failed or abandoned call left unusable is opened again for the next call).

use std::collections::BTreeMap;

use kafka_protocol::messages::{
    AlterClientQuotasResponse, AlterUserScramCredentialsResponse, ApiKey, ApiVersionsRequest, ApiVersionsResponse,
    CreatePartitionsResponse, CreateTopicsResponse, DeleteGroupsResponse, DeleteRecordsResponse, DeleteTopicsResponse,
    DescribeClientQuotasResponse, DescribeClusterResponse, DescribeConfigsResponse, DescribeGroupsResponse,
    DescribeLogDirsResponse, DescribeQuorumResponse, DescribeTopicPartitionsResponse,
    DescribeUserScramCredentialsResponse, FetchResponse, FindCoordinatorResponse, HeartbeatResponse,
    IncrementalAlterConfigsResponse, JoinGroupResponse, LeaveGroupResponse, ListGroupsResponse, ListOffsetsResponse,
    MetadataRequest, MetadataResponse, OffsetCommitResponse, OffsetDeleteResponse, OffsetFetchResponse,
    ProduceResponse, RequestKind, ResponseKind, SyncGroupResponse,
};
use kafka_protocol::protocol::{Message, Request, StrBytes};
use oxka_protocol::network::client::{ClientConnection, ClientError};

use crate::error::ToolError;
use crate::settings::ClientSettings;

/// Largest response a tool accepts (a Metadata answer of a very large cluster fits).
const MAX_RESPONSE_BYTES: usize = 256 << 20;
/// Kafka's UNSUPPORTED_VERSION: the broker answers ApiVersions in v0 when it does not know ours.
const UNSUPPORTED_VERSION: i16 = 35;

/// One connection to one broker and the versions it serves.
pub struct Admin {
    connection: ClientConnection,
    settings: ClientSettings,
    /// The broker's ApiVersions answer, as it sent it.
    api_versions: ApiVersionsResponse,
    /// api key -> (min, max) the broker serves.
    ranges: BTreeMap<i16, (i16, i16)>,
}

/// A response type this client can take out of a `ResponseKind`.
pub trait FromResponse: Sized {
    fn from_response(response: ResponseKind) -> Option<Self>;
}

macro_rules! from_response {
    ($($variant:ident => $ty:ty),* $(,)?) => {
        $(impl FromResponse for $ty {
            fn from_response(response: ResponseKind) -> Option<Self> {
                match response {
                    ResponseKind::$variant(r) => Some(r),
                    _ => None,
                }
            }
        })*
    };
}

from_response! {
    ApiVersions => ApiVersionsResponse,
    Metadata => MetadataResponse,
    CreateTopics => CreateTopicsResponse,
    DeleteTopics => DeleteTopicsResponse,
    CreatePartitions => CreatePartitionsResponse,
    DescribeConfigs => DescribeConfigsResponse,
    DescribeTopicPartitions => DescribeTopicPartitionsResponse,
    ListOffsets => ListOffsetsResponse,
    IncrementalAlterConfigs => IncrementalAlterConfigsResponse,
    FindCoordinator => FindCoordinatorResponse,
    ListGroups => ListGroupsResponse,
    DescribeGroups => DescribeGroupsResponse,
    OffsetFetch => OffsetFetchResponse,
    OffsetCommit => OffsetCommitResponse,
    DeleteGroups => DeleteGroupsResponse,
    OffsetDelete => OffsetDeleteResponse,
    Produce => ProduceResponse,
    Fetch => FetchResponse,
    JoinGroup => JoinGroupResponse,
    SyncGroup => SyncGroupResponse,
    Heartbeat => HeartbeatResponse,
    LeaveGroup => LeaveGroupResponse,
    DescribeLogDirs => DescribeLogDirsResponse,
    DeleteRecords => DeleteRecordsResponse,
    DescribeQuorum => DescribeQuorumResponse,
    DescribeCluster => DescribeClusterResponse,
    DescribeClientQuotas => DescribeClientQuotasResponse,
    AlterClientQuotas => AlterClientQuotasResponse,
    DescribeUserScramCredentials => DescribeUserScramCredentialsResponse,
    AlterUserScramCredentials => AlterUserScramCredentialsResponse,
}

impl Admin {
    /// Connects to the first address of the bootstrap list that answers ApiVersions.
    pub async fn bootstrap(settings: &ClientSettings) -> Result<Admin, ToolError> {
        let mut failures = Vec::new();
        for address in &settings.bootstrap {
            match Admin::connect(address, settings).await {
                Ok(admin) => return Ok(admin),
                Err(e) => failures.push(e.to_string()),
            }
        }
        Err(ToolError::Bootstrap(failures.join("; ")))
    }

    /// Connects to `address` and asks which versions it serves (ApiVersions v3, or v0 for a broker that
    /// does not know v3, as Kafka's clients fall back).
    pub async fn connect(address: &str, settings: &ClientSettings) -> Result<Admin, ToolError> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("oxka-tools"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let mut answer = None;
        for version in [3, 0] {
            let mut connection = open(address, settings).await?;
            let kind = RequestKind::ApiVersions(request.clone());
            match connection
                .call(ApiKey::ApiVersions, version, &kind, settings.request_timeout)
                .await
            {
                Ok(ResponseKind::ApiVersions(r)) if r.error_code == UNSUPPORTED_VERSION && version > 0 => continue,
                Ok(ResponseKind::ApiVersions(r)) => {
                    answer = Some((connection, r));
                    break;
                }
                Ok(_) => return Err(ClientError::Protocol(format!("{address}: not an ApiVersions answer")).into()),
                // A v0-format answer to our v3 request does not decode; try v0.
                Err(ClientError::Protocol(_)) if version > 0 => continue,
                Err(e) => return Err(e.into()),
            }
        }
        let (connection, api_versions) = answer
            .ok_or_else(|| ClientError::Protocol(format!("{address} answered no ApiVersions version we speak")))?;
        if api_versions.error_code != 0 {
            return Err(ToolError::Kafka(format!(
                "{address} refused ApiVersions: {}",
                crate::error::kafka_message(api_versions.error_code, None)
            )));
        }
        let ranges = api_versions
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        Ok(Admin {
            connection,
            settings: settings.clone(),
            api_versions,
            ranges,
        })
    }

    /// A connection to the cluster's controller as Metadata names it (where ZooKeeper-era brokers,
    /// Kafka before KRaft, want topic changes), else this one (KRaft brokers forward them, and oxka's
    /// brokers send them to the coordinators' controller themselves).
    pub async fn into_controller(mut self) -> Result<Admin, ToolError> {
        let metadata = self.metadata(Some(Vec::new())).await?;
        let controller = metadata
            .brokers
            .iter()
            .find(|b| b.node_id == metadata.controller_id)
            .map(|b| format!("{}:{}", b.host.as_str(), b.port));
        match controller {
            Some(address) if address != self.address() => Admin::connect(&address, &self.settings).await,
            _ => Ok(self),
        }
    }

    pub fn address(&self) -> &str {
        self.connection.address()
    }

    /// Whether the broker lists `api` in ApiVersions.
    pub fn serves(&self, api: ApiKey) -> bool {
        self.ranges.contains_key(&(api as i16))
    }

    pub fn api_versions(&self) -> &ApiVersionsResponse {
        &self.api_versions
    }

    /// The highest version of `Req` both sides speak, at least `floor` (a version below which the
    /// request lacks what the tool needs).
    fn version_for<Req: Request + Message>(&self, floor: i16) -> Result<(ApiKey, i16), ToolError> {
        self.version_between::<Req>(floor, i16::MAX)
    }

    /// As `version_for`, at most `cap` (a version from which the request changes shape in a way the
    /// tool does not build, e.g. Fetch by topic id from v13).
    fn version_between<Req: Request + Message>(&self, floor: i16, cap: i16) -> Result<(ApiKey, i16), ToolError> {
        let api = ApiKey::try_from(Req::KEY).expect("every Request type has a known key");
        let ours = Req::VERSIONS;
        let unsupported = |detail: String| ToolError::UnsupportedApi {
            address: self.address().to_string(),
            api: format!("{api:?}"),
            detail,
        };
        let Some(&(min, max)) = self.ranges.get(&Req::KEY) else {
            return Err(unsupported("it does not list it in ApiVersions".to_string()));
        };
        let version = max.min(ours.max).min(cap);
        if version < min.max(ours.min).max(floor) {
            return Err(unsupported(format!(
                "it serves {min} to {max}, this tool {} to {}",
                ours.min.max(floor),
                ours.max
            )));
        }
        Ok((api, version))
    }

    /// The version `send` would use for `Req` (for requests whose fields differ by version).
    pub fn version_of<Req: Request + Message>(&self, floor: i16) -> Result<i16, ToolError> {
        self.version_for::<Req>(floor).map(|(_, v)| v)
    }

    /// Sends `request` at the best common version and returns the typed answer.
    pub async fn send<Req>(&mut self, request: Req, floor: i16) -> Result<Req::Response, ToolError>
    where
        Req: Request + Message + Into<RequestKind>,
        Req::Response: FromResponse,
    {
        let (api, version) = self.version_for::<Req>(floor)?;
        let timeout = self.settings.request_timeout;
        let response = self
            .connection()
            .await?
            .call(api, version, &request.into(), timeout)
            .await?;
        Req::Response::from_response(response).ok_or_else(|| {
            ClientError::Protocol(format!("{}: answered {api:?} with another API", self.address())).into()
        })
    }

    /// As `send`, at a version no higher than `cap`.
    pub async fn send_capped<Req>(&mut self, request: Req, floor: i16, cap: i16) -> Result<Req::Response, ToolError>
    where
        Req: Request + Message + Into<RequestKind>,
        Req::Response: FromResponse,
    {
        let (api, version) = self.version_between::<Req>(floor, cap)?;
        let timeout = self.settings.request_timeout;
        let response = self
            .connection()
            .await?
            .call(api, version, &request.into(), timeout)
            .await?;
        Req::Response::from_response(response).ok_or_else(|| {
            ClientError::Protocol(format!("{}: answered {api:?} with another API", self.address())).into()
        })
    }

    /// Sends `request` without waiting for an answer (Produce with acks=0, which brokers do not answer).
    pub async fn send_unanswered<Req>(&mut self, request: Req, floor: i16) -> Result<(), ToolError>
    where
        Req: Request + Message + Into<RequestKind>,
    {
        let (api, version) = self.version_for::<Req>(floor)?;
        let timeout = self.settings.request_timeout;
        Ok(self
            .connection()
            .await?
            .send_only(api, version, &request.into(), timeout)
            .await?)
    }

    /// The connection, opened again to the same broker when a call on it failed, timed out or was
    /// abandoned before its whole answer (a consumer stopped by a signal mid-request still commits and
    /// leaves the group on it). The broker's API versions are kept.
    async fn connection(&mut self) -> Result<&mut ClientConnection, ToolError> {
        if !self.connection.is_usable() {
            let address = self.connection.address().to_string();
            self.connection = open(&address, &self.settings).await?;
        }
        Ok(&mut self.connection)
    }

    /// Metadata for `topics` (None: every topic), v1 or later (where an absent list means all).
    pub async fn metadata(&mut self, topics: Option<Vec<String>>) -> Result<MetadataResponse, ToolError> {
        use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
        use kafka_protocol::messages::TopicName;
        let request = MetadataRequest::default()
            .with_topics(topics.map(|names| {
                names
                    .into_iter()
                    .map(|n| MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_string(n)))))
                    .collect()
            }))
            .with_allow_auto_topic_creation(false);
        self.send(request, 1).await
    }
}

async fn open(address: &str, settings: &ClientSettings) -> Result<ClientConnection, ToolError> {
    Ok(ClientConnection::connect_secured(
        address,
        &settings.client_id,
        settings.connect_timeout,
        MAX_RESPONSE_BYTES,
        &settings.security,
    )
    .await?)
}
