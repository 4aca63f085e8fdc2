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
    /// The credentials of the peer of <paramref name="stream"/> when it is a connected Unix domain socket on Linux;
    /// null otherwise (TCP, TLS, other operating systems, a closed socket).
    /// </summary>
    public static UnixPeerCredentials? TryGet(Stream stream)
    {
        if (!OperatingSystem.IsLinux() || stream is not NetworkStream { Socket: { AddressFamily: AddressFamily.Unix } socket })
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
