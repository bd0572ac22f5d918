# Warnings on our own targets only; generated protobuf code is exempt. They are errors with
# PAINPOINT_WERROR (the presets and CI), not in a user's plain build, where a new compiler's
# false positive must not stop the build.
# -Wnull-dereference is left out: GCC 12 reports false positives inside libstdc++ at -O2.
function(painpoint_strict target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast -Wcast-align
    -Woverloaded-virtual -Wimplicit-fallthrough $<$<BOOL:${PAINPOINT_WERROR}>:-Werror>)
endfunction()
