// powercutfs: a FUSE file system that forgets what was not synced when its process dies, for the power-cut harness
// (scripts/power-cut, docs/reliability.md).
//
//     powercutfs BACKING MOUNTPOINT      (foreground, single-threaded; stop it with SIGKILL to "cut the power")
//
// Every file's bytes written since its last fsync/fdatasync are held in this process's memory, not in BACKING: reads
// see them, other processes see them, but killing this process loses them, as a power cut loses a disk's page cache.
// An fsync writes the file's whole current contents (and size) to BACKING and fsyncs it there. Namespace changes
// (create, mkdir, rename, RENAME_EXCHANGE, unlink, symlink, chmod) go to BACKING at once, so they survive the cut:
// a file created, written and renamed over another without an fsync is found, after the cut, at the new name with
// its old (usually empty) contents — the classic torn "atomic write". This is stricter than ext4's data=ordered
// default for data (ext4 flushes data on rename-over-replace) and looser for metadata (a rename here needs no fsync
// of its folder). The same model as LazyFS (dsrhaslab/lazyfs), written for this harness.
//
// Files are keyed by the backing inode, so a rename carries unsynced bytes along. The kernel's page cache sits
// above this process; the harness unmounts (lazy) after the kill and mounts a fresh process, so nothing cached
// survives the cut either.
#define FUSE_USE_VERSION 31
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

static char backing_root[PATH_MAX];

// One file's unsynced contents: its whole current bytes.
struct dirty {
    ino_t inode;
    char *data;
    size_t size, capacity;
    struct dirty *next;
};
static struct dirty *dirty_files;

static void backing(char out[PATH_MAX], const char *path) { snprintf(out, PATH_MAX, "%s%s", backing_root, path); }

static struct dirty *find_dirty(ino_t inode) {
    for (struct dirty *d = dirty_files; d; d = d->next)
        if (d->inode == inode) return d;
    return NULL;
}

static void drop_dirty(ino_t inode) {
    for (struct dirty **p = &dirty_files; *p; p = &(*p)->next) {
        if ((*p)->inode == inode) {
            struct dirty *d = *p;
            *p = d->next;
            free(d->data);
            free(d);
            return;
        }
    }
}

static int reserve(struct dirty *d, size_t size) {
    if (size <= d->capacity) return 0;
    size_t capacity = d->capacity ? d->capacity : 4096;
    while (capacity < size) capacity *= 2;
    char *data = realloc(d->data, capacity);
    if (!data) return -ENOMEM;
    d->data = data;
    d->capacity = capacity;
    return 0;
}

// The dirty record of the file open as `fd`, made from its synced bytes when it has none yet.
static int dirty_for(int fd, struct dirty **out) {
    struct stat st;
    if (fstat(fd, &st) != 0) return -errno;
    struct dirty *d = find_dirty(st.st_ino);
    if (!d) {
        d = calloc(1, sizeof *d);
        if (!d) return -ENOMEM;
        d->inode = st.st_ino;
        int r = reserve(d, (size_t)st.st_size + 1);
        if (r) {
            free(d);
            return r;
        }
        size_t done = 0;
        while (done < (size_t)st.st_size) {
            ssize_t n = pread(fd, d->data + done, (size_t)st.st_size - done, (off_t)done);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                int e = n < 0 ? errno : EIO;
                free(d->data);
                free(d);
                return -e;
            }
            done += (size_t)n;
        }
        d->size = done;
        d->next = dirty_files;
        dirty_files = d;
    }
    *out = d;
    return 0;
}

static int open_backing(const char *path, int flags) {
    char p[PATH_MAX];
    backing(p, path);
    // Reads of unsynced bytes come from memory and writes go there, but loading a file's synced bytes needs read
    // access, and an fsync needs write access, whatever the caller asked for.
    int fd = open(p, (flags & ~(O_TRUNC | O_APPEND | O_ACCMODE | O_CREAT | O_EXCL)) | O_RDWR);
    if (fd < 0 && (errno == EACCES || errno == EISDIR || errno == EROFS)) fd = open(p, flags & ~(O_TRUNC | O_CREAT));
    return fd;
}

static void *pc_init(struct fuse_conn_info *conn, struct fuse_config *cfg) {
    cfg->use_ino = 1;
    cfg->entry_timeout = 0;
    cfg->attr_timeout = 0;
    cfg->negative_timeout = 0;
    cfg->hard_remove = 1;  // unlink now; an open unlinked file keeps working through its descriptor
    cfg->nullpath_ok = 1;
    // Writes go through to this process at once (no kernel write-back cache that would hold them elsewhere).
    conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
    return NULL;
}

static int pc_getattr(const char *path, struct stat *st, struct fuse_file_info *fi) {
    int r;
    if (fi) {
        r = fstat((int)fi->fh, st);
    } else {
        char p[PATH_MAX];
        backing(p, path);
        r = lstat(p, st);
    }
    if (r != 0) return -errno;
    if (S_ISREG(st->st_mode)) {
        struct dirty *d = find_dirty(st->st_ino);
        if (d) st->st_size = (off_t)d->size;
    }
    return 0;
}

static int pc_readlink(const char *path, char *buf, size_t size) {
    char p[PATH_MAX];
    backing(p, path);
    ssize_t n = readlink(p, buf, size - 1);
    if (n < 0) return -errno;
    buf[n] = 0;
    return 0;
}

static int pc_opendir(const char *path, struct fuse_file_info *fi) {
    char p[PATH_MAX];
    backing(p, path);
    DIR *dir = opendir(p);
    if (!dir) return -errno;
    fi->fh = (uint64_t)(uintptr_t)dir;
    return 0;
}

static int pc_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t offset, struct fuse_file_info *fi,
                      enum fuse_readdir_flags flags) {
    (void)path, (void)offset, (void)flags;
    DIR *dir = (DIR *)(uintptr_t)fi->fh;
    rewinddir(dir);
    struct dirent *e;
    while ((e = readdir(dir))) {
        struct stat st = {.st_ino = e->d_ino, .st_mode = (mode_t)e->d_type << 12};
        if (fill(buf, e->d_name, &st, 0, 0)) break;
    }
    return 0;
}

static int pc_releasedir(const char *path, struct fuse_file_info *fi) {
    (void)path;
    closedir((DIR *)(uintptr_t)fi->fh);
    return 0;
}

static int pc_mkdir(const char *path, mode_t mode) {
    char p[PATH_MAX];
    backing(p, path);
    return mkdir(p, mode) == 0 ? 0 : -errno;
}

static int pc_unlink(const char *path) {
    char p[PATH_MAX];
    backing(p, path);
    struct stat st;
    int known = lstat(p, &st) == 0;
    if (unlink(p) != 0) return -errno;
    if (known && S_ISREG(st.st_mode) && st.st_nlink <= 1) drop_dirty(st.st_ino);
    return 0;
}

static int pc_rmdir(const char *path) {
    char p[PATH_MAX];
    backing(p, path);
    return rmdir(p) == 0 ? 0 : -errno;
}

static int pc_symlink(const char *target, const char *path) {
    char p[PATH_MAX];
    backing(p, path);
    return symlink(target, p) == 0 ? 0 : -errno;
}

static int pc_rename(const char *from, const char *to, unsigned int flags) {
    char a[PATH_MAX], b[PATH_MAX];
    backing(a, from);
    backing(b, to);
    struct stat replaced;
    int replaces = !(flags & RENAME_EXCHANGE) && lstat(b, &replaced) == 0 && S_ISREG(replaced.st_mode) &&
                   replaced.st_nlink <= 1;
    if (syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, flags) != 0) return -errno;
    if (replaces) drop_dirty(replaced.st_ino);
    return 0;
}

static int pc_link(const char *from, const char *to) {
    char a[PATH_MAX], b[PATH_MAX];
    backing(a, from);
    backing(b, to);
    return link(a, b) == 0 ? 0 : -errno;
}

static int pc_chmod(const char *path, mode_t mode, struct fuse_file_info *fi) {
    if (fi) return fchmod((int)fi->fh, mode) == 0 ? 0 : -errno;
    char p[PATH_MAX];
    backing(p, path);
    return chmod(p, mode) == 0 ? 0 : -errno;
}

static int pc_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi) {
    if (fi) return fchown((int)fi->fh, uid, gid) == 0 ? 0 : -errno;
    char p[PATH_MAX];
    backing(p, path);
    return lchown(p, uid, gid) == 0 ? 0 : -errno;
}

static int pc_truncate(const char *path, off_t size, struct fuse_file_info *fi) {
    int fd = fi ? (int)fi->fh : open_backing(path, O_RDWR);
    if (fd < 0) return -errno;
    struct dirty *d;
    int r = dirty_for(fd, &d);
    if (!r) r = reserve(d, (size_t)size);
    if (!r) {
        if ((size_t)size > d->size) memset(d->data + d->size, 0, (size_t)size - d->size);
        d->size = (size_t)size;
    }
    if (!fi) close(fd);
    return r;
}

static int pc_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi) {
    if (fi) return futimens((int)fi->fh, tv) == 0 ? 0 : -errno;
    char p[PATH_MAX];
    backing(p, path);
    return utimensat(AT_FDCWD, p, tv, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
}

static int pc_create(const char *path, mode_t mode, struct fuse_file_info *fi) {
    char p[PATH_MAX];
    backing(p, path);
    int fd = open(p, ((fi->flags & ~(O_TRUNC | O_APPEND | O_ACCMODE)) | O_RDWR | O_CREAT), mode);
    if (fd < 0) return -errno;
    fi->fh = (uint64_t)fd;
    return 0;
}

static int pc_open(const char *path, struct fuse_file_info *fi) {
    int fd = open_backing(path, fi->flags);
    if (fd < 0) return -errno;
    fi->fh = (uint64_t)fd;
    if (fi->flags & O_TRUNC) {
        int r = pc_truncate(path, 0, fi);
        if (r) {
            close(fd);
            return r;
        }
    }
    return 0;
}

static int pc_read(const char *path, char *buf, size_t size, off_t offset, struct fuse_file_info *fi) {
    (void)path;
    struct stat st;
    if (fstat((int)fi->fh, &st) != 0) return -errno;
    struct dirty *d = find_dirty(st.st_ino);
    if (!d) {
        ssize_t n = pread((int)fi->fh, buf, size, offset);
        return n < 0 ? -errno : (int)n;
    }
    if ((size_t)offset >= d->size) return 0;
    size_t n = d->size - (size_t)offset < size ? d->size - (size_t)offset : size;
    memcpy(buf, d->data + offset, n);
    return (int)n;
}

static int pc_write(const char *path, const char *buf, size_t size, off_t offset, struct fuse_file_info *fi) {
    (void)path;
    struct dirty *d;
    int r = dirty_for((int)fi->fh, &d);
    if (r) return r;
    if (fi->flags & O_APPEND) offset = (off_t)d->size;
    size_t end = (size_t)offset + size;
    if ((r = reserve(d, end))) return r;
    if ((size_t)offset > d->size) memset(d->data + d->size, 0, (size_t)offset - d->size);
    memcpy(d->data + offset, buf, size);
    if (end > d->size) d->size = end;
    return (int)size;
}

static int pc_statfs(const char *path, struct statvfs *st) {
    char p[PATH_MAX];
    backing(p, path);
    return statvfs(p, st) == 0 ? 0 : -errno;
}

static int pc_release(const char *path, struct fuse_file_info *fi) {
    (void)path;
    close((int)fi->fh);  // closing syncs nothing: the unsynced bytes stay in memory, as in a page cache
    return 0;
}

// Writes the file's unsynced bytes to the backing file and syncs it there: they now survive a cut.
static int pc_fsync(const char *path, int datasync, struct fuse_file_info *fi) {
    (void)path, (void)datasync;
    int fd = (int)fi->fh;
    struct stat st;
    if (fstat(fd, &st) != 0) return -errno;
    struct dirty *d = find_dirty(st.st_ino);
    if (d) {
        size_t done = 0;
        while (done < d->size) {
            ssize_t n = pwrite(fd, d->data + done, d->size - done, (off_t)done);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return -errno;
            done += (size_t)n;
        }
        if (ftruncate(fd, (off_t)d->size) != 0) return -errno;
        drop_dirty(st.st_ino);
    }
    return fsync(fd) == 0 ? 0 : -errno;
}

static int pc_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi) {
    (void)path, (void)datasync, (void)fi;
    return 0;  // namespace changes are durable at once in this model
}

static int pc_access(const char *path, int mask) {
    char p[PATH_MAX];
    backing(p, path);
    return access(p, mask) == 0 ? 0 : -errno;
}

static const struct fuse_operations operations = {
    .init = pc_init,
    .getattr = pc_getattr,
    .readlink = pc_readlink,
    .opendir = pc_opendir,
    .readdir = pc_readdir,
    .releasedir = pc_releasedir,
    .mkdir = pc_mkdir,
    .unlink = pc_unlink,
    .rmdir = pc_rmdir,
    .symlink = pc_symlink,
    .rename = pc_rename,
    .link = pc_link,
    .chmod = pc_chmod,
    .chown = pc_chown,
    .truncate = pc_truncate,
    .utimens = pc_utimens,
    .create = pc_create,
    .open = pc_open,
    .read = pc_read,
    .write = pc_write,
    .statfs = pc_statfs,
    .release = pc_release,
    .fsync = pc_fsync,
    .fsyncdir = pc_fsyncdir,
    .access = pc_access,
};

int main(int argc, char *argv[]) {
    if (argc != 3) {
        fprintf(stderr, "usage: powercutfs BACKING MOUNTPOINT (runs in the foreground; SIGKILL cuts the power)\n");
        return 2;
    }
    if (!realpath(argv[1], backing_root)) {
        fprintf(stderr, "powercutfs: %s: %s\n", argv[1], strerror(errno));
        return 2;
    }
    char *fuse_argv[] = {argv[0], "-f", "-s", "-o", "default_permissions,fsname=powercutfs", argv[2], NULL};
    return fuse_main(6, fuse_argv, &operations, NULL);
}
