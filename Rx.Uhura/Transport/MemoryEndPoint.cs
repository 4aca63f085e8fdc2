using System.Net;
using System.Net.Sockets;

namespace Rx.Uhura.Transport;

/// <summary>
/// A name in a <see cref="MemoryTransport"/>: <c>memory://NAME</c> parses to one. Servers, clients and nodes open it with
/// their <c>Transport</c> when that is a <see cref="MemoryTransport"/>, and with <see cref="MemoryTransport.Shared"/> when
/// it is the default <see cref="SocketTransport"/>.
/// </summary>
public sealed class MemoryEndPoint : EndPoint
{
    /// <summary>Creates the endpoint of <paramref name="name"/>.</summary>
    /// <exception cref="ArgumentException">The name is empty or blank.</exception>
    public MemoryEndPoint(string name)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        Name = name;
    }

    /// <summary>The name listened on and connected to (compared ordinally, case-sensitive).</summary>
    public string Name { get; }

    /// <inheritdoc/>
    public override AddressFamily AddressFamily => AddressFamily.Unspecified;

    /// <inheritdoc/>
    public override string ToString() => UhuraEndpoint.Format(this);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is MemoryEndPoint other && string.Equals(Name, other.Name, StringComparison.Ordinal);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(typeof(MemoryEndPoint), StringComparer.Ordinal.GetHashCode(Name));
}
