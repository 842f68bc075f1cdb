/**
 * The container stage as a stage of the MIME extraction: the extractor's access to its parts
 * (src/mime, ExtractionAccess) handed to the unpacker as the host it asks for (src/unpack,
 * ContainerHost). Neither module knows the other; this is where they meet.
 *
 * Owns: the mapping only. Mail found in a container is walked with the reading "container".
 */
import type { ExtractionAccess, PostStage } from '../mime/index.js';
import type { ContainerHost } from '../unpack/host.js';
import { unpackContainers, type UnpackOptions } from '../unpack/stage.js';

/** The reading that the parts of a mail message found in a container carry. */
const CONTAINER_READING = 'container';

export function containerStage(opts: UnpackOptions): PostStage {
  return (access) => unpackContainers(hostOver(access), access.messageSize, opts);
}

function hostOver(access: ExtractionAccess): ContainerHost {
  return {
    parts: access.parts,
    signal: access.signal,
    bytesOf: (part) => access.bytesOf(part),
    addMember: (meta, chunks) => access.addPart(meta, chunks),
    isMessage: (bytes, head) => access.looksLikeMessage(bytes, head),
    walkMessage: (part, bytes) => access.walkMessage(part, bytes, CONTAINER_READING),
    readEmbedded: (parts) => access.readEmbedded(parts),
  };
}
