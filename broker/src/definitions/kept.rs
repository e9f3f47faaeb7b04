//! What rmqd keeps from definitions without acting on it yet: vhost descriptions, tags and
//! limits, runtime parameters, global parameters and topic permissions. They are kept (on
//! disk too) and exported, so that a topology moved from RabbitMQ to rmqd and back loses
//! nothing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::format::{
    Definitions, GlobalParameterDef, ParameterDef, TopicPermissionDef, VhostMetadata,
};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Kept {
    /// By vhost name.
    pub vhosts: BTreeMap<String, KeptVhost>,
    pub topic_permissions: Vec<TopicPermissionDef>,
    pub parameters: Vec<ParameterDef>,
    pub global_parameters: Vec<GlobalParameterDef>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct KeptVhost {
    pub limits: Value,
    pub metadata: VhostMetadata,
}

impl Kept {
    /// Takes in what `defs` says of these things; an entry for the same vhost, parameter or
    /// permission replaces the one kept, as a second import would in RabbitMQ.
    pub fn merge(&mut self, defs: &Definitions) {
        for vhost in &defs.vhosts {
            self.vhosts.insert(
                vhost.name.clone(),
                KeptVhost {
                    limits: vhost.limits.clone(),
                    metadata: vhost.metadata.clone(),
                },
            );
        }
        for p in &defs.topic_permissions {
            self.topic_permissions
                .retain(|k| (&k.user, &k.vhost, &k.exchange) != (&p.user, &p.vhost, &p.exchange));
            self.topic_permissions.push(p.clone());
        }
        for p in &defs.parameters {
            self.parameters
                .retain(|k| (&k.vhost, &k.component, &k.name) != (&p.vhost, &p.component, &p.name));
            self.parameters.push(p.clone());
        }
        for p in &defs.global_parameters {
            self.global_parameters.retain(|k| k.name != p.name);
            self.global_parameters.push(p.clone());
        }
    }

    /// Drops everything about a deleted vhost.
    pub fn forget_vhost(&mut self, vhost: &str) {
        self.vhosts.remove(vhost);
        self.topic_permissions.retain(|p| p.vhost != vhost);
        self.parameters.retain(|p| p.vhost != vhost);
    }

    pub fn is_empty(&self) -> bool {
        *self == Kept::default()
    }
}
