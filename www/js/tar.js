// An uncompressed ustar archive of a model folder, written here (no zip library needed): the
// Download of a trained run (download.js) and of a saved model (saved-models.js).

function tarHeader(name, size) {
  const h = new Uint8Array(512);
  const enc = new TextEncoder();
  const put = (str, offset, length) => h.set(enc.encode(str).subarray(0, length), offset);
  const octal = (n, length) => n.toString(8).padStart(length - 1, '0') + '\0';
  put(name, 0, 100);
  put(octal(0o644, 8), 100, 8);
  put(octal(0, 8), 108, 8);
  put(octal(0, 8), 116, 8);
  put(octal(size, 12), 124, 12);
  put(octal(Math.floor(Date.now() / 1000), 12), 136, 12);
  put('        ', 148, 8); // checksum placeholder: spaces
  put('0', 156, 1);
  put('ustar\0', 257, 6);
  put('00', 263, 2);
  let sum = 0;
  for (const b of h) sum += b;
  put(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8);
  return h;
}

/** A tar Blob of `files` ([name, Uint8Array] pairs) inside `folder/`. */
export function makeTar(folder, files) {
  const parts = [];
  for (const [name, bytes] of files) {
    parts.push(tarHeader(`${folder}/${name}`, bytes.byteLength), bytes);
    const pad = (512 - (bytes.byteLength % 512)) % 512;
    if (pad) parts.push(new Uint8Array(pad));
  }
  parts.push(new Uint8Array(1024));
  return new Blob(parts, { type: 'application/x-tar' });
}
