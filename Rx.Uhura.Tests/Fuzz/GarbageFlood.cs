using System.Net;
using System.Net.Sockets;

namespace Rx.Uhura.Tests.Fuzz;

/// <summary>Many raw connections sending seeded garbage at once, each waiting for the far side to close it.</summary>
internal static class GarbageFlood
{
    public const int Connections = 1000;

    /// <summary>
    /// Opens <see cref="Connections"/> sockets to <paramref name="endPoint"/> (all at once), writes each its garbage
    /// (<paramref name="garbage"/> of seed 1..N) and reads until the far side closes it. Returns how many were not closed
    /// within the timeout, described by seed and bytes.
    /// </summary>
    public static async Task<string[]> RunAsync(EndPoint endPoint, Func<Random, byte[]> garbage)
    {
        var inputs = Enumerable.Range(1, Connections).Select(seed => garbage(new Random(seed))).ToArray();
        var open = await Task.WhenAll(inputs.Select(bytes => Task.Run(() => OneAsync(endPoint, bytes))));
        return [.. inputs.Select((bytes, i) => open[i] ? $"seed {i + 1}: {FuzzHarness.Dump(bytes)}" : null).OfType<string>()];
    }

    /// <summary>True when the socket was still open after the timeout.</summary>
    private static async Task<bool> OneAsync(EndPoint endPoint, byte[] bytes)
    {
        using var socket = endPoint is UnixDomainSocketEndPoint
            ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
            : new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(8));
        try
        {
            await socket.ConnectAsync(endPoint, timeout.Token);
            await socket.SendAsync(bytes, SocketFlags.None, timeout.Token);
        }
        catch (SocketException)
        {
            return false; // reset while writing: the far side closed it already
        }

        var buffer = new byte[4096];
        try
        {
            while (await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token) > 0)
            {
            }

            return false;
        }
        catch (SocketException)
        {
            return false;
        }
        catch (OperationCanceledException)
        {
            return true;
        }
    }

    /// <summary><paramref name="length"/> random bytes from <paramref name="rng"/>, none of them NUL.</summary>
    public static byte[] NonNul(Random rng, int length)
    {
        var bytes = new byte[length];
        rng.NextBytes(bytes);
        for (var i = 0; i < bytes.Length; i++)
        {
            bytes[i] |= (byte)(bytes[i] == 0 ? 1 : 0);
        }

        return bytes;
    }

    /// <summary>Random letters and digits.</summary>
    public static string Alnum(Random rng, int length)
        => new(Enumerable.Range(0, length).Select(_ => "abcdefghijklmnopqrstuvwxyz0123456789"[rng.Next(36)]).ToArray());

    /// <summary>Managed memory after a full collection, in bytes.</summary>
    public static long ManagedMemory()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        return GC.GetTotalMemory(forceFullCollection: true);
    }
}
