/*
 * attach/elf.c: defined symbols of an ELF64 x86-64 object's .dynsym.
 *
 * The file is mapped read-only and every offset, size and index taken from
 * it is checked against the file size before use: the file belongs to the
 * target, which may be hostile. Only .dynsym is read: stripped executables
 * (Debian's /usr/bin/python3.11) keep it, and the interpreter exports its
 * C API there (-export-dynamic), as libpython and libc do.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attach/attach_internal.h"
#include "util/alloc.h"

#define ELF_MAX_BYTES ((uint64_t)1 << 31) /* 2 GiB: no interpreter is larger */

struct hs_elf {
	const unsigned char *data;
	size_t size;
	uint64_t bias;
	const Elf64_Sym *syms;
	size_t nsyms;
	const char *strs;
	size_t strs_size;
};

static int in_file(const hs_elf *e, uint64_t off, uint64_t len)
{
	return off <= e->size && len <= e->size - off;
}

void hs_elf_free(hs_elf *e)
{
	if (!e)
		return;
	if (e->data)
		munmap((void *)e->data, e->size);
	hs_free(e);
}

int hs_elf_open(hs_elf **out, pid_t pid, const hs_map *first)
{
	*out = NULL;
	char fn[4200];
	snprintf(fn, sizeof(fn), "/proc/%d/root%s", (int)pid, first->path);
	int fd = open(fn, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fd = open(first->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return hs_error_set(HS_EIO, "cannot open '%s': %s", first->path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < (off_t)sizeof(Elf64_Ehdr) ||
	    (uint64_t)st.st_size > ELF_MAX_BYTES) {
		close(fd);
		return hs_error_set(HS_EFORMAT, "'%s' is not an ELF file of a plausible size", first->path);
	}
	void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return hs_error_set(HS_EIO, "cannot map '%s': %s", first->path, strerror(errno));
	hs_elf *e = hs_calloc(1, sizeof(*e));
	if (!e) {
		munmap(p, (size_t)st.st_size);
		return HS_ENOMEM;
	}
	e->data = p;
	e->size = (size_t)st.st_size;
	int rc = HS_EFORMAT;
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)e->data;
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh->e_ident[EI_DATA] != ELFDATA2LSB || eh->e_machine != EM_X86_64 ||
	    (eh->e_type != ET_DYN && eh->e_type != ET_EXEC) ||
	    eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_shentsize != sizeof(Elf64_Shdr) ||
	    !in_file(e, eh->e_phoff, (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr)) ||
	    !in_file(e, eh->e_shoff, (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr)))
		goto bad;
	/* load bias: where the segment holding the first mapping's offset went */
	const Elf64_Phdr *ph = (const Elf64_Phdr *)(e->data + eh->e_phoff);
	int found = 0;
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		if (ph[i].p_type != PT_LOAD || ph[i].p_align < 4096)
			continue;
		uint64_t pg_off = ph[i].p_offset & ~(uint64_t)4095, pg_vaddr = ph[i].p_vaddr & ~(uint64_t)4095;
		if (first->offset < pg_off || first->offset - pg_off >= ph[i].p_filesz + 4096)
			continue;
		e->bias = first->start - (pg_vaddr + (first->offset - pg_off));
		found = 1;
		break;
	}
	if (!found)
		goto bad;
	const Elf64_Shdr *sh = (const Elf64_Shdr *)(e->data + eh->e_shoff);
	for (unsigned i = 0; i < eh->e_shnum; i++) {
		if (sh[i].sh_type != SHT_DYNSYM)
			continue;
		if (sh[i].sh_entsize != sizeof(Elf64_Sym) || !in_file(e, sh[i].sh_offset, sh[i].sh_size) ||
		    sh[i].sh_offset % 8 || sh[i].sh_link >= eh->e_shnum)
			goto bad;
		const Elf64_Shdr *ss = &sh[sh[i].sh_link];
		if (ss->sh_type != SHT_STRTAB || !in_file(e, ss->sh_offset, ss->sh_size) || !ss->sh_size)
			goto bad;
		e->syms = (const Elf64_Sym *)(e->data + sh[i].sh_offset);
		e->nsyms = sh[i].sh_size / sizeof(Elf64_Sym);
		e->strs = (const char *)(e->data + ss->sh_offset);
		e->strs_size = ss->sh_size;
		break;
	}
	if (!e->syms) {
		rc = hs_error_set(HS_EFORMAT, "'%s' has no dynamic symbol table", first->path);
		goto fail;
	}
	*out = e;
	return 0;
bad:
	rc = hs_error_set(HS_EFORMAT, "'%s' is not a valid ELF64 x86-64 object", first->path);
fail:
	hs_elf_free(e);
	return rc;
}

uint64_t hs_elf_sym(const hs_elf *e, const char *name)
{
	return hs_elf_sym_sized(e, name, NULL);
}

uint64_t hs_elf_sym_sized(const hs_elf *e, const char *name, uint64_t *size)
{
	size_t nlen = strlen(name);
	for (size_t i = 1; i < e->nsyms; i++) {
		const Elf64_Sym *s = &e->syms[i];
		if (s->st_shndx == SHN_UNDEF || s->st_value == 0 || s->st_name >= e->strs_size)
			continue;
		int type = ELF64_ST_TYPE(s->st_info);
		if (type != STT_FUNC && type != STT_OBJECT && type != STT_GNU_IFUNC)
			continue;
		if (type == STT_GNU_IFUNC)
			continue; /* would need the resolver run: none of ours are ifuncs */
		size_t room = e->strs_size - s->st_name;
		if (room <= nlen || memcmp(e->strs + s->st_name, name, nlen + 1))
			continue;
		if (size)
			*size = s->st_size;
		return e->bias + s->st_value;
	}
	return 0;
}
