#pragma once

// All of the Kafka clients at once, for code that uses several of them; one client's users include
// its own header (producer.h, consumer.h, admin.h; the shared types are in kafka_types.h).

#include "painpoint/ingest/admin.h"        // IWYU pragma: export
#include "painpoint/ingest/consumer.h"     // IWYU pragma: export
#include "painpoint/ingest/kafka_types.h"  // IWYU pragma: export
#include "painpoint/ingest/producer.h"     // IWYU pragma: export
