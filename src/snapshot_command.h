/* `kiln snapshot merge DIR`: snapshot folders handled offline, with no VM running
 * (docs/snapshots.md). */
#ifndef KILN_SNAPSHOT_COMMAND_H
#define KILN_SNAPSHOT_COMMAND_H

/* argv: "kiln", "snapshot", ... Returns the exit status: 0, or 125 with one line on stderr. */
int snapshot_command(int argc, char **argv);

#endif
