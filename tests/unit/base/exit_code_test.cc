#include "painpoint/base/exit_code.h"

#include <gtest/gtest.h>

namespace painpoint::base {
namespace {

// Scripts and tests outside the binary read these numbers; a renumbering must fail here.
TEST(ExitCode, NumbersAreTheDocumentedOnes) {
  EXPECT_EQ(to_int(ExitCode::kOk), 0);
  EXPECT_EQ(to_int(ExitCode::kFailed), 1);
  EXPECT_EQ(to_int(ExitCode::kInputRejected), 1);
  EXPECT_EQ(to_int(ExitCode::kTopicsMismatch), 1);
  EXPECT_EQ(to_int(ExitCode::kStartFailed), 1);
  EXPECT_EQ(to_int(ExitCode::kBadUsage), 2);
  EXPECT_EQ(to_int(ExitCode::kCannotProceed), 2);
  EXPECT_EQ(to_int(ExitCode::kStoreLocked), 3);
  EXPECT_EQ(to_int(ExitCode::kStoreFailed), 3);
  EXPECT_EQ(to_int(ExitCode::kImportIncomplete), 3);
}

}  // namespace
}  // namespace painpoint::base
