/* kiln snapshot merge DIR: folds a diff snapshot into its base (snap_merge), so the base
 * folder holds the later point and the chain a restore reads is one link shorter. */
#include <stdio.h>
#include <string.h>

#include "kiln/snapshot/snap_merge.h"
#include "kiln/vm/stop.h"
#include "snapshot_command.h"

static void print_usage(FILE *out)
{
    fputs("usage: kiln snapshot merge DIR\n"
          "\n"
          "Folds the diff snapshot in DIR (taken with kiln ctl SOCKET snapshot DIR --diff BASE)\n"
          "into its base: the base's memory file gets DIR's pages, and DIR's state and\n"
          "config replace the base's, so the base folder then holds the point DIR was\n"
          "taken at. DIR is left as it is (restoring it gives the same VM). No VM may be\n"
          "running from the base (docs/snapshots.md).\n"
          "\n"
          "flags:\n"
          "  --help, -h  this text\n"
          "\n"
          "exit status: 0 when merged, 125 with one line on stderr when not.\n",
          out);
}

static int usage_error(const char *what)
{
    fprintf(stderr, "kiln snapshot: error: %s (see 'kiln snapshot --help')\n", what);
    return EXIT_KILN_ERROR;
}

int snapshot_command(int argc, char **argv)
{
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            print_usage(stdout);
            return 0;
        }
    }
    if (argc < 3)
        return usage_error("missing what to do: kiln snapshot merge DIR");
    if (strcmp(argv[2], "merge") != 0) {
        fprintf(stderr, "kiln snapshot: error: unknown command '%s' (expected merge)\n", argv[2]);
        return EXIT_KILN_ERROR;
    }
    if (argc != 4 || (argv[3][0] == '-' && argv[3][1]))
        return usage_error(argc < 4 ? "merge needs the diff's folder: kiln snapshot merge DIR"
                                    : "merge takes one folder: kiln snapshot merge DIR");
    struct error err = {{0}};
    char base[4096];
    if (snap_merge(argv[3], base, sizeof(base), &err) < 0) {
        fprintf(stderr, "kiln snapshot: error: %s\n", err.msg);
        return EXIT_KILN_ERROR;
    }
    printf("merged %s into %s: %s now holds the later point\n", argv[3], base, base);
    return 0;
}
