// The cluster core's and the config's names as the doors use them: the
// doors translate HTTP to these types and back.
#pragma once

#include "cluster/step_service.h"
#include "config/server_config.h"

namespace kiln::server {

using cluster::ClusterInfo;
using cluster::StepService;
using cluster::SubmitRequest;
using config::EnvironmentConfig;
using config::ServerConfig;

}  // namespace kiln::server
