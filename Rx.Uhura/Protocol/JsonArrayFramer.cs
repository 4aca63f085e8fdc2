using System.Buffers;
using System.Text;

namespace Rx.Uhura.Protocol;

/// <summary>
/// Cuts the elements out of an endless JSON array (<c>[ e1 , e2 , ... ]</c>) arriving in arbitrary chunks. It only
/// tracks structure (depth, strings, escapes), so each byte is scanned once however the element is split; the
/// element's JSON itself is validated by the parser that reads it. Resumable: state is kept between calls. The Node
/// uhura wire's <see cref="IMessageReader{TMessage}"/>: a message is one element's bytes.
/// </summary>
internal sealed class JsonArrayFramer : IMessageReader<ReadOnlySequence<byte>>
{
    private static readonly SearchValues<byte> Structural = SearchValues.Create("\"[]{}"u8);
    private static readonly SearchValues<byte> StringSpecial = SearchValues.Create("\"\\"u8);

    private Phase _phase = Phase.Start;
    private int _depth;
    private bool _inString;
    private bool _escape;
    private long _scanned;

    public JsonArrayFramer(long maxElementSize)
    {
        MaxMessageSize = maxElementSize;
    }

    private enum Phase
    {
        Start,
        FirstElement,
        NextElement,
        InElement,
        AfterElement,
        Closed,
    }

    /// <inheritdoc/>
    public long MaxMessageSize { get; set; }

    /// <summary>True once the closing <c>]</c> was read.</summary>
    public bool IsClosed => _phase == Phase.Closed;

    /// <summary>True while part of an element is buffered.</summary>
    public bool InElement => _phase == Phase.InElement;

    /// <summary>
    /// Tries to cut the next whole element from <paramref name="input"/>, which must start at the last
    /// <paramref name="consumed"/> position returned (whitespace, the opening <c>[</c> and commas are consumed too).
    /// </summary>
    /// <exception cref="DecodeException">The bytes are not an array of objects/arrays, or an element is too large.</exception>
    public bool TryParseMessage(in ReadOnlySequence<byte> input, ref SequencePosition consumed, ref SequencePosition examined, out ReadOnlySequence<byte> element)
    {
        var reader = new SequenceReader<byte>(input);
        if (_phase == Phase.InElement)
        {
            reader.Advance(_scanned);
        }

        while (!reader.End)
        {
            if (_phase == Phase.InElement)
            {
                if (ScanElement(ref reader))
                {
                    element = input.Slice(consumed, reader.Position);
                    consumed = reader.Position;
                    examined = consumed;
                    _phase = Phase.AfterElement;
                    return true;
                }

                continue;
            }

            var b = reader.UnreadSpan[0];
            if (b is (byte)' ' or (byte)'\n' or (byte)'\r' or (byte)'\t')
            {
                reader.Advance(1);
                consumed = reader.Position;
                continue;
            }

            switch (_phase)
            {
                case Phase.Start when b == (byte)'[':
                    _phase = Phase.FirstElement;
                    break;
                case Phase.Start:
                    throw Unexpected(b, "the stream must be a JSON array and start with '['", reader);
                case Phase.FirstElement when b == (byte)']':
                case Phase.AfterElement when b == (byte)']':
                    _phase = Phase.Closed;
                    break;
                case Phase.AfterElement when b == (byte)',':
                    _phase = Phase.NextElement;
                    break;
                case Phase.AfterElement:
                    throw Unexpected(b, "expected ',' or ']' after an element", reader);
                case Phase.FirstElement or Phase.NextElement when b is (byte)'[' or (byte)'{':
                    _phase = Phase.InElement;
                    _depth = 0;
                    _inString = false;
                    _escape = false;
                    _scanned = 0;
                    continue; // the element starts here: scan it, opening bracket included
                case Phase.FirstElement or Phase.NextElement:
                    throw Unexpected(b, "each element must be a JSON array or object", reader);
                case Phase.Closed:
                    throw Unexpected(b, "data after the end of the array", reader);
            }

            reader.Advance(1);
            consumed = reader.Position;
        }

        examined = input.End;
        element = default;
        return false;
    }

    /// <summary>Scans the current span of the element; true when the element ended (reader positioned after it).</summary>
    private bool ScanElement(ref SequenceReader<byte> reader)
    {
        var span = reader.UnreadSpan;
        var i = 0;
        while (i < span.Length)
        {
            if (_inString)
            {
                if (_escape)
                {
                    _escape = false;
                    i++;
                    continue;
                }

                var s = span[i..].IndexOfAny(StringSpecial);
                if (s < 0)
                {
                    i = span.Length;
                    break;
                }

                i += s;
                if (span[i] == (byte)'\\')
                {
                    _escape = true;
                }
                else
                {
                    _inString = false;
                }

                i++;
                continue;
            }

            var k = span[i..].IndexOfAny(Structural);
            if (k < 0)
            {
                i = span.Length;
                break;
            }

            i += k;
            switch (span[i])
            {
                case (byte)'"':
                    _inString = true;
                    break;
                case (byte)'[' or (byte)'{':
                    _depth++;
                    break;
                default:
                    if (--_depth == 0)
                    {
                        i++;
                        _scanned += i;
                        CheckSize();
                        reader.Advance(i);
                        return true;
                    }

                    break;
            }

            i++;
        }

        _scanned += i;
        CheckSize();
        reader.Advance(i);
        return false;
    }

    private void CheckSize()
    {
        if (_scanned > MaxMessageSize)
        {
            throw new FrameTooLargeException(MaxMessageSize);
        }
    }

    private static DecodeException Unexpected(byte b, string what, SequenceReader<byte> reader)
    {
        var sample = reader.UnreadSequence;
        var text = Encoding.UTF8.GetString(sample.Slice(0, Math.Min(sample.Length, 120)));
        var shown = b is >= 0x20 and < 0x7f ? $"'{(char)b}'" : $"0x{b:x2}";
        return new DecodeException($"Unexpected {shown} at offset {reader.Consumed} of the buffered data: {what}.", text);
    }
}
