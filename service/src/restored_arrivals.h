#pragma once

// The arrival log during a restore (docs/benchmarks.md, "What a cold restore's records are"):
// each stored event puts an arrival-log entry that a later checkpoint of its product deletes a few
// changelog batches on, so a restore from the beginning would write a put and a delete for almost
// every event. The restore holds these puts back instead and writes only those still
// present when the read ends (the events since the last checkpoint, which the stage replays).

#include <map>
#include <span>
#include <string>
#include <vector>

#include "painpoint/store/store.h"

namespace painpoint::service {

class RestoredArrivals {
 public:
  // `partition_was_empty`: the restore began on a cleared partition, so a key the restore puts
  // and deletes is absent without either write; otherwise the delete is still written.
  explicit RestoredArrivals(bool partition_was_empty) : partition_was_empty_(partition_was_empty) {}

  // Appends to `out` the writes of `writes` (in changelog order) to make now: every write except
  // the arrival log's puts, which are held; a delete or range deletion of the arrival log also
  // drops the held puts it covers. `out` refers to the strings of `writes`.
  void filter(std::span<const store::PreparedWrite> writes, std::vector<store::PreparedWrite>& out);

  // The puts still held, in key order; they refer to this object's strings. Write them before
  // the restored partition is read (the order among different keys does not matter).
  [[nodiscard]] std::vector<store::PreparedWrite> held() const;
  // Forgets the held puts (once written).
  void clear();

 private:
  bool partition_was_empty_;
  std::map<std::string, std::string, std::less<>> held_;  // key → value
};

}  // namespace painpoint::service
