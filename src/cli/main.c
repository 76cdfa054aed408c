// main: `xbarsim <command> [options]`, dispatched through a table of subcommands
#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "mpi_exec.h"
#include "pipeline.h"
#include "provenance.h"
#include "worker.h"

static const xb_command *const commands[] = {&xb_cmd_data, &xb_cmd_train, &xb_cmd_program, &xb_cmd_netlist, &xb_cmd_eval, &xb_cmd_run};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void print_overview(FILE *fp)
{
    fputs("usage: xbarsim <command> [options]\n"
          "       xbarsim help <command>     show a command's options\n"
          "       xbarsim --version          tool and linked library versions\n"
          "\n"
          "SPICE-coupled co-simulation of neural networks on RRAM (1T1R) crossbar arrays.\n"
          "\n"
          "commands:\n",
          fp);
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(fp, "  %-10s %s\n", commands[i]->name, commands[i]->summary);
    fputs("\nExit codes: 0 success, 1 runtime failure, 2 bad usage or bad input.\n", fp);
}

static const xb_command *find(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!strcmp(commands[i]->name, name))
            return commands[i];
    return NULL;
}

static int run_main(int argc, char **argv);

int main(int argc, char **argv)
{
    /* Results are CSV with '.' decimals whatever the user's locale. */
    setlocale(LC_ALL, "C");
    /* Under mpirun or srun every rank starts here: rank 0 runs the command, the others serve its solves. */
    xb_error err = {0};
    if (xb_mpi_init(&argc, &argv, &err)) {
        fprintf(stderr, "xbarsim: %s\n", err.msg);
        return xb_exit_code(err.code);
    }
    if (xb_mpi_rank() > 0) {
        static const xb_worker_type *const served[] = {&xb_spice_worker};
        return xb_mpi_serve(served, sizeof served / sizeof served[0]);
    }
    int rc = run_main(argc, argv);
    xb_mpi_finalize();
    return rc;
}

static int run_main(int argc, char **argv)
{
    if (argc < 2) {
        print_overview(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h")) {
        print_overview(stdout);
        return 0;
    }
    if (!strcmp(name, "--version") || !strcmp(name, "version")) {
        char why[512] = "";
        int v = xb_eval_ngspice_linked(why, sizeof why);
        xb_versions_print(stdout, v, why);
        printf("  MPI      %s\n", xb_mpi_library());
        return 0;
    }
    if (!strcmp(name, "help")) {
        if (argc < 3) {
            print_overview(stdout);
            return 0;
        }
        const xb_command *c = find(argv[2]);
        if (!c) {
            fprintf(stderr, "xbarsim help: unknown command '%s'; 'xbarsim help' lists them\n", argv[2]);
            return 2;
        }
        xb_cli_print_usage(c);
        return 0;
    }
    const xb_command *c = find(name);
    if (!c) {
        fprintf(stderr, "xbarsim: unknown command '%s'\n\n", name);
        print_overview(stderr);
        return 2;
    }
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            xb_cli_print_usage(c);
            return 0;
        }
    xb_cli_set_program(argv[0]);
    xb_cli_catch_signals(c->name);
    return c->run(argc - 1, argv + 1);
}
