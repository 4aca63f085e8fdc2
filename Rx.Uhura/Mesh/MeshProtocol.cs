namespace Rx.Uhura.Mesh;

/// <summary>The wire a <see cref="UhuraNode"/> speaks to its peers. Every node of a mesh must speak the same one.</summary>
public enum MeshProtocol
{
    /// <summary>
    /// The library's own mesh protocol (see <c>docs/PROTOCOL.md</c>, "Mesh"): length-prefixed frames, deterministic
    /// connection de-duplication, heartbeats, channels and the event bus (<see cref="UhuraNode.Emit(string, System.ReadOnlySpan{object?})"/>).
    /// The default.
    /// </summary>
    Native,

    /// <summary>
    /// The wire of npm <c>masterless@0.4.1</c> (JSON values ended by <c>\r\n</c>), to join Node masterless nodes:
    /// peers, keep flags, heartbeats and packets. It has no channel and no event bus: <c>Emit</c> throws.
    /// </summary>
    Masterless,
}
