"""Reading and writing files safely: the one floor every reader and writer goes through.

A file from a stranger may be a FIFO, a device, a symlink out of its folder, a
bomb that declares gigabytes in kilobytes, or bytes that make a C library spin
or crash.  Every reader of ``shared`` (checkpoints, tokenizers, pair files,
port's readers, ONNX exports) reads through these modules, so each one keeps
the same rules; a new reader adopts them by calling the one function for its
format instead of the library's own ``open``:

    the format                  call                                  instead of
    any file, whole             safe.read_regular(path, kind, max)    open(path).read()
    JSON                        safe.loads(text, path, max)           json.loads(text)
    a zip (.keras, torch.save)  archive.open_zip(path, kind)          zipfile.ZipFile(path)
    HDF5 (.h5, .weights.h5)     hdf5.read_hdf5(path or bytes, kind)   h5py.File(path)
    a TF checkpoint             bundle.read_bundle(prefix)            tf.train.load_checkpoint
    a file another file names   external.inside(folder, name, ...)    os.path.join(folder, name)
    ONNX                        shared.onnx.load.load_onnx(path)      onnx.load(path)
    torch.save                  shared.port.readers.torch.load_torch_file(path)   torch.load

(``load_onnx`` and ``load_torch_file`` live where their library may be
imported, and are built on these modules.)  The rules:

``safe``: regular files only, opened without blocking, sizes checked before any
read, strict JSON (depth and number limits), ``brief`` for values in messages.
``limits``: the caps, and ``declared_bytes`` / ``check_within``, which hold a
size a file declares against the cap and the file's real size before anything
is allocated.  ``archive``: zip members' methods, flags and sizes checked, reads
bounded.  ``hdf5``: libhdf5 runs in a confined child and sends back plain data.
``confined``: that child process (``run_confined``: a time and a memory limit)
and ``memory_limited`` for a library that only allocates.  ``bundle`` and
``crc32c``: TensorFlow's checkpoint format read in Python, checksums included.
``external``: names resolved only inside the naming file's folder.
``atomic``: ``write_atomically(path, data)`` puts a file in place whole or not
at all; every output goes through it, and a killed writer's temporary files are
removed by the next write.  docs/security.md says which rule stops which attack.

May import: shared.core; NumPy and the standard library, and h5py inside functions.
"""
