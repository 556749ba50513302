"""Small real projects used by several tests (document trees as {path: text})."""

GREET_LIB = {
    "plan.yaml": """
        kind: plan
        projects: ["*/project.yaml"]
        targets:
          release: {opt: release}
          debug: {opt: debug}
        default_targets: [release]
    """,
    "greet/project.yaml": """
        kind: project
        name: greet
        version: 1.0.0
        language: c
        standard: c17
        sources: ["src/*.c"]
        headers: ["include/*.h", "src/*.h"]
        public_headers: ["include/greet.h"]
        include_dirs: [include]
        flags: {compile: [-Wall, -Wextra]}
        outputs:
          - {name: greet, kind: static-library}
    """,
    "greet/include/greet.h": """
        #ifndef GREET_H
        #define GREET_H
        const char *greet_word(void);
        int greet_twice(int x);
        #endif
    """,
    "greet/src/internal.h": """
        #define GREETING "hello"
    """,
    "greet/src/greet.c": """
        #include "greet.h"
        #include "internal.h"
        const char *greet_word(void) { return GREETING; }
    """,
    "greet/src/twice.c": """
        #include "greet.h"
        int greet_twice(int x) { return 2 * x; }
    """,
    "hello/project.yaml": """
        kind: project
        name: hello
        version: 0.3.0
        language: c
        sources: ["src/*.c"]
        depends: [greet]
        defines: {SHOUT: 1}
        outputs:
          - {name: hello, kind: executable}
    """,
    "hello/src/main.c": """
        #include <stdio.h>
        #include "greet.h"
        int main(int argc, char **argv) {
            (void)argv;
        #ifdef EXTRA
            printf("extra\\n");
        #endif
            printf("%s %d %d\\n", greet_word(), greet_twice(argc), SHOUT);
            return 0;
        }
    """,
}
