using System.Buffers;
using System.Text;

namespace Rx.Uhura.Internal;

/// <summary>A <see cref="TextWriter"/> that encodes straight into an <see cref="IBufferWriter{T}"/> as UTF-8, so Newtonsoft.Json can serialize without an intermediate string.</summary>
internal sealed class Utf8BufferTextWriter : TextWriter
{
    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: false);
    private readonly Encoder _encoder = Utf8.GetEncoder();
    private IBufferWriter<byte>? _output;

    public override Encoding Encoding => Utf8;

    public void SetOutput(IBufferWriter<byte> output)
    {
        _output = output;
        _encoder.Reset();
    }

    public override void Write(char value) => Write(new ReadOnlySpan<char>(in value));

    public override void Write(char[] buffer, int index, int count) => Write(buffer.AsSpan(index, count));

    public override void Write(string? value) => Write(value.AsSpan());

    public override void Write(ReadOnlySpan<char> buffer)
    {
        var output = _output ?? throw new InvalidOperationException("No output set.");
        while (!buffer.IsEmpty)
        {
            var span = output.GetSpan(Math.Min(buffer.Length * 3, 8192) + 4);
            _encoder.Convert(buffer, span, flush: false, out var charsUsed, out var bytesUsed, out _);
            output.Advance(bytesUsed);
            buffer = buffer[charsUsed..];
        }
    }

    public override void Flush()
    {
        var output = _output ?? throw new InvalidOperationException("No output set.");
        var span = output.GetSpan(8);
        _encoder.Convert(ReadOnlySpan<char>.Empty, span, flush: true, out _, out var bytesUsed, out _);
        output.Advance(bytesUsed);
    }
}
