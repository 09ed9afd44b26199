/* Runs a fuzz target's entry point over files, without libFuzzer: the seed
 * corpus and every saved crash (tests/fuzz/regressions/) replay in every
 * `make test`, under the sanitizers too. Usage: fuzz_replay_X FILE... */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv) {
    int replayed = 0;
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (!f) {
            fprintf(stderr, "cannot open %s\n", argv[i]);
            return 1;
        }
        static uint8_t buf[1 << 20];
        size_t n = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        uint8_t *copy = malloc(n ? n : 1); /* exact size, so ASan sees overreads */
        for (size_t k = 0; k < n; k++) copy[k] = buf[k];
        LLVMFuzzerTestOneInput(copy, n);
        free(copy);
        replayed++;
    }
    printf("%d inputs replayed without a crash\n", replayed);
    return 0;
}
