package trait

import (
	"encoding/json"
	"reflect"
	"strconv"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
)

// jsonObject is a JSON object as a CEL map(string, dyn) that decodes only
// what a condition reads: its fields are indexed on first access, a field
// is converted when it is read, and the whole object is decoded only for
// operations over all of it (iteration, size, equality, conversion).
type jsonObject struct {
	raw     []byte
	indexed bool
	fields  []field
	full    traits.Mapper // the decoded object, for whole-object operations
}

var _ traits.Mapper = (*jsonObject)(nil)

func newJSONObject(raw []byte) *jsonObject { return &jsonObject{raw: raw} }

func (o *jsonObject) decoded() traits.Mapper {
	if o.full == nil {
		var m map[string]any
		_ = json.Unmarshal(o.raw, &m)
		if m == nil {
			m = map[string]any{}
		}
		o.full = types.NewStringInterfaceMap(types.DefaultTypeAdapter, m)
	}
	return o.full
}

// Find implements traits.Mapper.
func (o *jsonObject) Find(key ref.Val) (ref.Val, bool) {
	k, ok := key.(types.String)
	if !ok {
		return nil, false
	}
	if !o.indexed {
		o.indexed = true
		eachField(o.raw, func(key, val []byte) {
			o.fields = append(o.fields, field{key, val})
		})
	}
	for i := len(o.fields) - 1; i >= 0; i-- {
		if string(o.fields[i].key) == string(k) {
			return celValue(o.fields[i].val), true
		}
	}
	return nil, false
}

// celValue converts a raw JSON value.
func celValue(raw []byte) ref.Val {
	if len(raw) == 0 {
		return types.NullValue
	}
	switch raw[0] {
	case '{':
		return newJSONObject(raw)
	case '[':
		var l []any
		if json.Unmarshal(raw, &l) != nil {
			return types.NewErr("invalid JSON")
		}
		return types.DefaultTypeAdapter.NativeToValue(l)
	case '"':
		s, ok := unquote(raw)
		if !ok {
			return types.NewErr("invalid JSON")
		}
		return types.String(s)
	case 't':
		return types.True
	case 'f':
		return types.False
	case 'n':
		return types.NullValue
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return types.NewErr("invalid JSON number")
	}
	return types.Double(f)
}

// Get implements traits.Indexer.
func (o *jsonObject) Get(key ref.Val) ref.Val {
	v, ok := o.Find(key)
	if !ok {
		return types.ValOrErr(v, "no such key: %v", key)
	}
	return v
}

// Contains implements traits.Container.
func (o *jsonObject) Contains(key ref.Val) ref.Val {
	_, ok := o.Find(key)
	return types.Bool(ok)
}

// Iterator implements traits.Iterable.
func (o *jsonObject) Iterator() traits.Iterator { return o.decoded().Iterator() }

// Size implements traits.Sizer.
func (o *jsonObject) Size() ref.Val { return o.decoded().Size() }

// ConvertToNative implements ref.Val.
func (o *jsonObject) ConvertToNative(t reflect.Type) (any, error) {
	return o.decoded().ConvertToNative(t)
}

// ConvertToType implements ref.Val.
func (o *jsonObject) ConvertToType(t ref.Type) ref.Val {
	switch t {
	case types.MapType:
		return o
	case types.TypeType:
		return types.MapType
	}
	return o.decoded().ConvertToType(t)
}

// Equal implements ref.Val.
func (o *jsonObject) Equal(other ref.Val) ref.Val {
	if oo, ok := other.(*jsonObject); ok {
		other = oo.decoded()
	}
	return o.decoded().Equal(other)
}

// Type implements ref.Val.
func (o *jsonObject) Type() ref.Type { return types.MapType }

// Value implements ref.Val.
func (o *jsonObject) Value() any { return o.decoded().Value() }
