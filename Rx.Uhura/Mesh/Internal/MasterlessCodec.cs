using System.Buffers;
using System.Text;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Protocol;

namespace Rx.Uhura.Mesh.Internal;

/// <summary>
/// The masterless framing: one JSON value followed by <c>\r\n</c>. A received JSON <c>null</c> ends the stream. Packets
/// are read by <see cref="MasterlessPacketReader"/>.
/// </summary>
internal static class MasterlessCodec
{
    /// <summary>What ends a packet.</summary>
    public static ReadOnlySpan<byte> CrLf => "\r\n"u8;

    /// <summary>Reads a last packet left without its <c>\r\n</c> when the stream ended (the Node reader delivers it too).</summary>
    public static bool TryReadTail(in ReadOnlySequence<byte> buffer, int maxDepth, out JToken packet)
    {
        packet = null!;
        if (buffer.IsEmpty || IsBlank(buffer))
        {
            return false;
        }

        packet = NativeMeshCodec.Parse(buffer, maxDepth, type: null);
        return true;
    }

    /// <summary>The bytes of one packet: its JSON text and <c>\r\n</c>.</summary>
    public static byte[] Encode(JToken value)
    {
        var text = value.ToString(Formatting.None);
        var bytes = new byte[Encoding.UTF8.GetByteCount(text) + 2];
        var written = Encoding.UTF8.GetBytes(text, bytes);
        bytes[written] = (byte)'\r';
        bytes[written + 1] = (byte)'\n';
        return bytes;
    }

    private static bool IsBlank(in ReadOnlySequence<byte> buffer)
    {
        foreach (var segment in buffer)
        {
            foreach (var b in segment.Span)
            {
                if (b is not ((byte)' ' or (byte)'\r' or (byte)'\n' or (byte)'\t'))
                {
                    return false;
                }
            }
        }

        return true;
    }
}
