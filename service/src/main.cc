#include "painpoint/service/cli.h"

int main(int argc, char** argv) { return painpoint::service::run_cli(argc, argv); }
