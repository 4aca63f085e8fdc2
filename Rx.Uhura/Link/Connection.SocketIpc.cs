using System.Buffers;
using System.Runtime.InteropServices;
using Rx.Uhura.Protocol;

namespace Rx.Uhura;

public sealed partial class Connection
{
    private SocketIpcMessageReader? _socketIpcReader;

    /// <summary>
    /// socket-ipc: delivers each message as an event named by its topic with the message as its one argument (none
    /// when the frame has no message). No acks, no dedupe: the wire has neither.
    /// </summary>
    private void ReadSocketIpc(in ReadOnlySequence<byte> buffer, ref SequencePosition consumed, ref SequencePosition examined)
    {
        var reader = _socketIpcReader ??= new SocketIpcMessageReader(_options.SocketIpcTranscoder, _options.MaxMessageSize, _options.MaxJsonDepth, Names);
        while (!HasEnded && reader.TryParseMessage(buffer.Slice(consumed), ref consumed, ref examined, out var message))
        {
            UhuraEvent e;
            if (message.MessageJson is { } json)
            {
                var bytes = MemoryMarshal.TryGetArray(json, out var segment) ? segment : new ArraySegment<byte>(json.ToArray());
                e = new UhuraEvent(message.Topic, bytes.Array!, bytes.Offset, bytes.Count, skip: -1, _options.MaxJsonDepth, 0, null, this);
            }
            else
            {
                e = new UhuraEvent(message.Topic, [], null, this);
            }

            if (!HasEnded)
            {
                Dispatch(e, null, 0);
            }
        }
    }
}
