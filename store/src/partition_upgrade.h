#pragma once

// The one-time upgrade of a closed schema 2 data directory to the per-partition layout
// (schema 3): the steps around partition_migration::copy, each of which a crash may interrupt and
// a later run resumes:
//   1. create a schema 3 family (partitioned_family_name()) beside each partitioned family;
//   2. copy (resumable by itself, see partition_migration.h);
//   3. one write: schema version 3, and the copy's progress keys deleted;
//   4. drop the schema 2 partitioned families (a run that finds version 3 drops what is left).
// One way: after step 1 a schema 2 build cannot open the directory read-write (RocksDB opens
// every family), and step 2 moves the default family's per-product records and counters.
//
// Store::open calls it on a read-write open of a schema 2 directory (store_open.cc).

#include <rocksdb/status.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include "partition_assignment.h"
#include "partition_migration.h"
#include "store_internal.h"

namespace painpoint::store::partition_upgrade {

// The name of the schema 3 family of a partitioned family: "<schema 2 name>@p". Column families
// cannot be renamed, so the schema 3 layout keeps these names.
[[nodiscard]] std::string partitioned_family_name(Family family);

struct UpgradeLimits {
  partition_migration::CopyLimits copy;
  // Stop with Incomplete after step 3 (version written, schema 2 families not dropped yet), as
  // a crash there would. For tests.
  bool stop_before_drop = false;
};

struct UpgradeStats {
  std::uint32_t found_version = 0;  // the schema version the run found
  partition_migration::CopyStats copy;
  std::uint32_t families_dropped = 0;
};

// OK once the directory is at schema 3 with no schema 2 partitioned family left (also when an
// earlier run got there); Incomplete when stopped by `limits`; InvalidArgument for a directory at
// another version than 2 or 3; the copy's Corruption for a record without a partition.
rocksdb::Status run(const std::filesystem::path& dir,
                    const partition_assignment::PartitionRule& rule, const UpgradeLimits& limits,
                    UpgradeStats* stats);

}  // namespace painpoint::store::partition_upgrade
