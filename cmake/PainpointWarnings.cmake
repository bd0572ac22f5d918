# Warnings are errors on our own targets only; generated protobuf code is exempt.
# -Wnull-dereference is left out: GCC 12 reports false positives inside libstdc++ at -O2.
function(painpoint_strict target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast -Wcast-align
    -Woverloaded-virtual -Wimplicit-fallthrough -Werror)
endfunction()
