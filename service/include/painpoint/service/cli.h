#pragma once

namespace painpoint::service {

// The `painpoint` command line: serve, broker, produce, cluster, config. Returns the exit code.
int run_cli(int argc, char** argv);

}  // namespace painpoint::service
