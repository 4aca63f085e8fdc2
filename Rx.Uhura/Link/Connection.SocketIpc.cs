using System.Buffers;
using System.Net.Sockets;
using Rx.Uhura.Protocol;
using Rx.Uhura.Protocol.Native;
using Rx.Uhura.Session;

namespace Rx.Uhura;

public sealed partial class Connection
{
    /// <summary>
    /// socket-ipc: cuts the frames ended by two NULs, delivers each as an event named by its topic with the message as
    /// its one argument (none when the frame has no message). No acks, no dedupe: the wire has neither.
    /// </summary>
    private void ReadSocketIpc(in ReadOnlySequence<byte> buffer, ref SequencePosition consumed, ref SequencePosition examined)
    {
        if (_options.SocketIpcTranscoder is { } transcoder && transcoder is not JsonSocketIpcTranscoder)
        {
            ReadSocketIpcWith(transcoder, buffer, ref consumed, ref examined);
            return;
        }

        var rest = buffer.Slice(consumed);
        while (!HasEnded && DelimitedFrames.TryCut(ref rest, SocketIpcCodec.Delimiter, _options.MaxMessageSize, ref _delimiterScanned, out var frame))
        {
            consumed = rest.Start;
            examined = consumed;
            var bytes = frame.ToArray();
            var scan = SocketIpcCodec.Scan(bytes, _options.MaxJsonDepth, Names);
            var e = scan.MessageStart < 0
                ? new UhuraEvent(scan.Topic, [], null, this)
                : new UhuraEvent(scan.Topic, bytes, scan.MessageStart, scan.MessageLength, skip: -1, _options.MaxJsonDepth, 0, null, this);
            if (!HasEnded)
            {
                Dispatch(e, null, 0);
            }
        }

        examined = buffer.End;
    }

    /// <summary>socket-ipc through a custom transcoder: its message JSON is validated here, as the default path's is.</summary>
    private void ReadSocketIpcWith(ISocketIpcTranscoder transcoder, in ReadOnlySequence<byte> buffer, ref SequencePosition consumed, ref SequencePosition examined)
    {
        var remaining = buffer.Slice(consumed);
        while (!HasEnded && transcoder.TryDecode(ref remaining, _options.MaxMessageSize, out var message))
        {
            consumed = remaining.Start;
            examined = consumed;
            if (message.Topic is null)
            {
                throw new DecodeException("The socket-ipc transcoder decoded a message without a topic.");
            }

            UhuraEvent e;
            if (message.MessageJson is { } json)
            {
                var bytes = json.ToArray();
                JsonArgs.ValidateValue(bytes, _options.MaxJsonDepth, "message");
                e = new UhuraEvent(message.Topic, bytes, 0, bytes.Length, skip: -1, _options.MaxJsonDepth, 0, null, this);
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

        examined = buffer.End;
    }
}
