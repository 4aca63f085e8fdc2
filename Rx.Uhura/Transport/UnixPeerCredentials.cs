using System.Buffers.Binary;
using System.Net.Sockets;

namespace Rx.Uhura.Transport;

/// <summary>
/// Who is on the other end of a Unix domain socket, as the kernel saw it when the connection was made (Linux
/// <c>SO_PEERCRED</c>): process id, user id and group id. A server can use them to decide whom to serve; they cannot
/// be forged by the peer.
/// </summary>
/// <param name="ProcessId">The peer's process id.</param>
/// <param name="UserId">The peer's effective user id.</param>
/// <param name="GroupId">The peer's effective group id.</param>
public sealed record UnixPeerCredentials(int ProcessId, uint UserId, uint GroupId)
{
    private const int SolSocket = 1;
    private const int SoPeerCred = 17;

    /// <summary>
    /// The credentials of the peer of <paramref name="stream"/> when its transport knows them (a connected Unix domain
    /// socket on Linux, or a TLS stream over one; see <see cref="ITransportStream.PeerCredentials"/>); null otherwise
    /// (TCP, other operating systems, a closed socket, a stream that is not a transport's).
    /// </summary>
    public static UnixPeerCredentials? TryGet(Stream stream) => SocketFacts.Of(stream)?.PeerCredentials;

    /// <summary>Linux <c>SO_PEERCRED</c> of a connected Unix domain socket; null for any other socket or platform.</summary>
    internal static UnixPeerCredentials? Read(Socket socket)
    {
        if (!OperatingSystem.IsLinux() || socket.AddressFamily != AddressFamily.Unix)
        {
            return null;
        }

        Span<byte> ucred = stackalloc byte[12]; // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
        try
        {
            if (socket.GetRawSocketOption(SolSocket, SoPeerCred, ucred) != ucred.Length)
            {
                return null;
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            return null;
        }

        return BitConverter.IsLittleEndian
            ? new(BinaryPrimitives.ReadInt32LittleEndian(ucred), BinaryPrimitives.ReadUInt32LittleEndian(ucred[4..]), BinaryPrimitives.ReadUInt32LittleEndian(ucred[8..]))
            : new(BinaryPrimitives.ReadInt32BigEndian(ucred), BinaryPrimitives.ReadUInt32BigEndian(ucred[4..]), BinaryPrimitives.ReadUInt32BigEndian(ucred[8..]));
    }
}
