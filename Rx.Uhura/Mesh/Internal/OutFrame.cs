namespace Rx.Uhura.Mesh.Internal;

/// <summary>
/// Bytes queued for one link: an optional per-link head (a bus frame's header with its sequence) and a body that may
/// be shared by many links (a multi-dispatched packet, a forwarded bus event), so it is encoded once.
/// </summary>
internal readonly record struct OutFrame(byte[]? Head, ReadOnlyMemory<byte> Body)
{
    public int Length => (Head?.Length ?? 0) + Body.Length;
}
