// Dev entry point for service/src/cluster_command.cc until `painpoint cluster` is wired:
//   cluster_command_dev [cluster] --input F --output F [--config F] [--vectors F|none] [k=v...]
#include <iostream>
#include <string>

#include "cluster_command.h"

int main(int argc, char** argv) {
  painpoint::service::ClusterCommandOptions o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "cluster") continue;
    if (a == "--input" && i + 1 < argc) {
      o.input_path = argv[++i];
    } else if (a == "--output" && i + 1 < argc) {
      o.output_path = argv[++i];
    } else if (a == "--config" && i + 1 < argc) {
      o.config_path = argv[++i];
    } else if (a == "--vectors" && i + 1 < argc) {
      o.vectors_path = argv[++i];
    } else if (const auto eq = a.find('='); eq != std::string::npos) {
      o.config_overrides.emplace_back(a.substr(0, eq), a.substr(eq + 1));
    } else {
      std::cerr << "usage: cluster_command_dev --input F --output F [--config F] [--vectors F]\n";
      return 2;
    }
  }
  return painpoint::service::run_cluster_command(o);
}
