namespace Rx.Uhura.Mesh.Internal;

/// <summary>Where a link is in its life.</summary>
internal enum LinkPhase
{
    Handshaking,
    Stable,
    Closed,
}
